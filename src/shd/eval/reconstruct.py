"""Flat weight vectors (fitted or sampled) to part-labelled meshes, in batches that fit the device.

Generated weights are untrusted: a row with a NaN or infinite weight comes back as a failed mesh
(status `nan`) without being evaluated, so one broken sample costs nothing and stops nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from shd.eval.field_bounds import MoEField
from shd.eval.meshing import REFERENCE_LEVEL, REFERENCE_RESOLUTION, FieldFn, MeshResult, iter_meshes
from shd.fields.config import FieldConfig
from shd.fields.layout import Layout
from shd.progress import task


def weights_field(
    flat: torch.Tensor, layout: Layout, field: FieldConfig, device: torch.device | str = "cpu"
) -> MoEField:
    """(B, D) flat vectors as one batched field: points (B, P, 3) -> expert logits (B, P, E), combined
    as `field.combine` says and bounded over boxes, so that meshing takes the sparse path."""
    return MoEField.from_flat(flat, layout, field, device)


def mesh_weights(
    flat: torch.Tensor,
    layout: Layout,
    field: FieldConfig,
    *,
    resolution: int = REFERENCE_RESOLUTION,
    level: float = REFERENCE_LEVEL,
    batch_size: int = 8,
    chunk_points: int = 2**15,
    device: torch.device | str = "cpu",
) -> list[MeshResult]:
    """One mesh per row of `flat` (N, D), in row order; face labels are the arg-max expert.

    Rows are meshed `batch_size` at a time (the grid of a batch is held on the device: 4 R^3 bytes a
    shape); `chunk_points` bounds the points per shape in one field call, hence the activations.
    """
    if flat.ndim != 2 or flat.shape[1] != layout.dim:
        raise ValueError(f"expected (N, {layout.dim}) weight vectors, got {tuple(flat.shape)}")
    finite = torch.isfinite(flat).all(dim=1)
    rows = finite.nonzero().squeeze(1).tolist()
    meshes = [MeshResult.failed("nan", "non-finite weights") for _ in range(len(flat))]

    def batches() -> Iterator[tuple[FieldFn, int]]:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            yield weights_field(flat[chunk], layout, field, device), len(chunk)

    done = iter_meshes(
        batches(), resolution=resolution, level=level, chunk_points=chunk_points, device=device
    )
    with task(f"meshing at {resolution}^3", total=len(rows), unit="shapes") as advance:
        for start, batch in zip(range(0, len(rows), batch_size), done, strict=True):
            for row, mesh in zip(rows[start : start + batch_size], batch, strict=True):
                meshes[row] = mesh
            advance(len(batch))
    return meshes
