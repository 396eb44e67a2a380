"""One fixed colour per part index, shared by renders and exported meshes so figures and files agree."""

from __future__ import annotations

import numpy as np

# Colour-blind-friendly (Okabe-Ito order), part 0 first; indices past the end wrap around.
PART_COLORS = np.array(
    [
        [0.00, 0.45, 0.70],  # blue
        [0.90, 0.62, 0.00],  # orange
        [0.00, 0.62, 0.45],  # green
        [0.80, 0.47, 0.65],  # purple
        [0.84, 0.37, 0.00],  # vermillion
        [0.34, 0.71, 0.91],  # sky blue
        [0.94, 0.89, 0.26],  # yellow
        [0.45, 0.45, 0.45],  # grey
    ]
)


def part_rgb(labels: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1], shape (..., 3), for integer part labels."""
    return PART_COLORS[np.asarray(labels, dtype=np.int64) % len(PART_COLORS)]


def part_rgba8(labels: np.ndarray) -> np.ndarray:
    """RGBA bytes, shape (..., 4), as mesh files store colours."""
    rgb = np.round(part_rgb(labels) * 255).astype(np.uint8)
    alpha = np.full(rgb.shape[:-1] + (1,), 255, dtype=np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)


def part_name(index: int, part_names: list[str] | tuple[str, ...] | None) -> str:
    """The part's name when known, else 'part <i>'."""
    if part_names is not None and 0 <= index < len(part_names):
        return part_names[index]
    return f"part {index}"
