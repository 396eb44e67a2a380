"""Marching-cubes lookup tables, generated here from the cube's geometry rather than copied.

Corner c of a cell sits at offset (c & 1, c >> 1 & 1, c >> 2 & 1); configuration bit c is set when
corner c is inside (value > level). Edge k joins corners `EDGE_CORNERS[k]` along axis `EDGE_AXIS[k]`.

Each configuration is triangulated from the polygon(s) the level set draws on the cube's boundary:
on every face the crossing edges are paired into segments, each face on its own, so the two cells
that share a face draw the same segments there and the mesh is watertight by construction. A face
with four crossings (its inside corners on one diagonal, the ambiguous case) is cut so that its
inside corners stay apart; this fixed rule replaces scikit-image's (Lewiner's) asymptotic decider and
interior tests, so the two meshes differ only in those ambiguous cells and in how a polygon is split
into triangles (see BENCHMARKS.md eval_meshing). Segments are oriented with the inside corners on
their left seen from outside the cube, so that every closed loop is oriented alike; each loop is then
fanned into triangles, counter-clockwise seen from outside the shape.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CORNER_OFFSETS = np.array([(c & 1, c >> 1 & 1, c >> 2 & 1) for c in range(8)], dtype=np.int64)
EDGE_CORNERS = np.array(
    [(c, c | 1 << a) for a in range(3) for c in range(8) if not c >> a & 1], dtype=np.int64
)  # (12, 2): lower corner, upper corner
EDGE_AXIS = np.array([a for a in range(3) for c in range(8) if not c >> a & 1], dtype=np.int64)


def _faces() -> list[tuple[np.ndarray, list[int]]]:
    """The six faces: (outward normal, four corners in cyclic order)."""
    out = []
    for a in range(3):
        u, v = (a + 1) % 3, (a + 2) % 3
        for side in (0, 1):
            ring = [(0, 0), (1, 0), (1, 1), (0, 1)]
            corners = []
            for du, dv in ring:
                bits = [0, 0, 0]
                bits[a], bits[u], bits[v] = side, du, dv
                corners.append(bits[0] | bits[1] << 1 | bits[2] << 2)
            normal = np.zeros(3)
            normal[a] = 1.0 if side else -1.0
            out.append((normal, corners))
    return out


_EDGE_INDEX = {(int(a), int(b)): k for k, (a, b) in enumerate(EDGE_CORNERS)}


def _edge_of(c0: int, c1: int) -> int:
    return _EDGE_INDEX[min(c0, c1), max(c0, c1)]


def _midpoint(edge: int) -> np.ndarray:
    a, b = EDGE_CORNERS[edge]
    return (CORNER_OFFSETS[a] + CORNER_OFFSETS[b]) / 2.0


def _segments(config: int, faces: list[tuple[np.ndarray, list[int]]]) -> dict[int, int]:
    """Directed boundary segments of one configuration: next edge of each crossing edge."""
    inside = [bool(config >> c & 1) for c in range(8)]
    nxt: dict[int, int] = {}
    for normal, ring in faces:
        edges = [_edge_of(ring[i], ring[(i + 1) % 4]) for i in range(4)]  # edge i joins ring i, i+1
        crossing = [inside[ring[i]] != inside[ring[(i + 1) % 4]] for i in range(4)]
        pairs: list[tuple[int, int, np.ndarray]] = []  # (edge, edge, inside point to keep on the left)
        if sum(crossing) == 2:
            e0, e1 = (edges[i] for i in range(4) if crossing[i])
            ins = [CORNER_OFFSETS[c] for c in ring if inside[c]]
            pairs.append((e0, e1, np.mean(ins, axis=0)))
        elif sum(crossing) == 4:  # ambiguous: cut off each inside corner on its own
            for i in range(4):
                if inside[ring[i]]:
                    pairs.append((edges[(i - 1) % 4], edges[i], CORNER_OFFSETS[ring[i]].astype(float)))
        for e0, e1, keep in pairs:
            p, q = _midpoint(e0), _midpoint(e1)
            if np.dot(np.cross(q - p, keep - p), normal) < 0:
                e0, e1 = e1, e0
            nxt[e0] = e1
    return nxt


def _triangles(config: int, faces: list[tuple[np.ndarray, list[int]]]) -> list[tuple[int, int, int]]:
    nxt = _segments(config, faces)
    tris = []
    seen: set[int] = set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop = [start]
        while nxt[loop[-1]] != start:
            loop.append(nxt[loop[-1]])
        seen.update(loop)
        # the loop runs with the inside on its left seen from outside the cube, i.e. clockwise seen
        # from outside the shape: reverse the fan so triangles are counter-clockwise from outside
        tris += [(loop[0], loop[i + 1], loop[i]) for i in range(1, len(loop) - 1)]
    return tris


@lru_cache(maxsize=1)
def triangle_table() -> tuple[np.ndarray, np.ndarray]:
    """(256, T, 3) edge indices of each configuration's triangles (-1 padded) and (256,) counts."""
    faces = _faces()
    tris = [_triangles(c, faces) for c in range(256)]
    width = max(len(t) for t in tris)
    table = np.full((256, width, 3), -1, dtype=np.int64)
    for c, t in enumerate(tris):
        if t:
            table[c, : len(t)] = t
    return table, np.array([len(t) for t in tris], dtype=np.int64)
