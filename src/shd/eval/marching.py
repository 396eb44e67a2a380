"""Marching cubes in plain torch over bricks of a grid: the same code on CPU and CUDA, no host trip.

A brick is a (S+1)^3 block of grid values whose first point sits at an integer `origin` of the full
R^3 grid; the dense grid is the single brick of S = R - 1, the sparse band many small ones. Output
is canonical, so that the dense and the sparse path give the same arrays, not only the same
surface: a vertex is a crossing grid edge, numbered by its global edge id (vertices sorted by it,
so shared vertices are welded and come once), and faces follow the global order of their cells,
then the table's order within a cell. A vertex lies on its edge at the linear interpolation of the
two values, as in scikit-image, from the first brick that holds that edge.
"""

from __future__ import annotations

import torch

from shd.eval.mc_tables import CORNER_OFFSETS, EDGE_AXIS, EDGE_CORNERS, triangle_table

_TABLES: dict[torch.device, tuple[torch.Tensor, ...]] = {}


def _tables(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Lookup tables on `device` (copied once per device)."""
    if device not in _TABLES:
        table, counts = triangle_table()
        lower = CORNER_OFFSETS[EDGE_CORNERS[:, 0]]  # (12, 3) offset of each edge's lower corner
        unit = torch.eye(3, dtype=torch.int64)[torch.from_numpy(EDGE_AXIS)]  # (12, 3)
        _TABLES[device] = tuple(
            t.to(device)
            for t in (
                torch.from_numpy(table),
                torch.from_numpy(counts),
                torch.from_numpy(lower),
                unit,
                torch.from_numpy(EDGE_AXIS),
            )
        )
    return _TABLES[device]


def cube_configs(inside: torch.Tensor) -> torch.Tensor:
    """(N, S+1, S+1, S+1) bool -> (N, S, S, S) int16 configuration of each cell (bit c: corner c)."""
    s = inside.shape[1] - 1
    cfg = torch.zeros((inside.shape[0], s, s, s), dtype=torch.int16, device=inside.device)
    for c, (dx, dy, dz) in enumerate(CORNER_OFFSETS.tolist()):
        corner = inside[:, dx : dx + s, dy : dy + s, dz : dz + s]
        cfg |= corner.to(torch.int16) << c
    return cfg


def march_bricks(
    values: torch.Tensor, origins: torch.Tensor, resolution: int, level: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Marching cubes of bricks (N, S+1, S+1, S+1) at `origins` (N, 3) of an R^3 grid.

    Returns vertices (V, 3) float32 in [-0.5, 0.5]^3 and faces (F, 3) int64, on the values' device;
    cells beyond the grid (a brick running past its last point) are skipped. Values must be finite.
    """
    device = values.device
    table, counts, lower, unit, _ = _tables(device)
    r = resolution
    cfg = cube_configs(values > level)
    cells = ((cfg != 0) & (cfg != 255)).nonzero()  # (n, 4): brick, i, j, k
    brick, local = cells[:, 0], cells[:, 1:]
    glob = origins[brick] + local
    keep = (glob < r - 1).all(dim=1)
    if not bool(keep.all()):
        brick, local, glob = brick[keep], local[keep], glob[keep]
    if len(origins) > 1:  # one brick is already in global (row-major) order
        order = torch.argsort((glob[:, 0] * r + glob[:, 1]) * r + glob[:, 2])
        brick, local, glob = brick[order], local[order], glob[order]
    conf = cfg[brick, local[:, 0], local[:, 1], local[:, 2]].long()
    n_tri = counts[conf]
    slot = torch.arange(table.shape[1], device=device)
    tri_cell, tri_slot = (slot < n_tri.unsqueeze(1)).nonzero(as_tuple=True)  # cell-major order
    edges = table[conf[tri_cell], tri_slot].reshape(-1)  # (3m,)
    cell = tri_cell.repeat_interleave(3)
    point = glob[cell] + lower[edges]  # global lower end of each edge
    ids = _edge_ids(point, edges, r, device)
    uniq, inverse = torch.unique(ids, return_inverse=True)
    first = torch.full((len(uniq),), len(ids), dtype=torch.int64, device=device)
    first.scatter_reduce_(0, inverse, torch.arange(len(ids), device=device), "amin")
    e, c = edges[first], cell[first]
    a = local[c] + lower[e]
    b = a + unit[e]
    bi = brick[c]
    va = values[bi, a[:, 0], a[:, 1], a[:, 2]]
    vb = values[bi, b[:, 0], b[:, 1], b[:, 2]]
    t = (level - va) / (vb - va)
    verts = (point[first].float() + t.unsqueeze(1) * unit[e].float()) / (r - 1) - 0.5
    return verts, inverse.view(-1, 3)


def _edge_ids(point: torch.Tensor, edges: torch.Tensor, r: int, device: torch.device) -> torch.Tensor:
    """Global id of a grid edge: axis * R^3 + row-major index of its lower end."""
    _, _, _, _, axis = _tables(device)
    return axis[edges] * r**3 + (point[:, 0] * r + point[:, 1]) * r + point[:, 2]
