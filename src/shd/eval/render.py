"""Headless part-coloured renders: one mesh, a captioned grid or a strip (PNG), an animation (GIF).

matplotlib's Agg backend needs no display or GPU (NOTES-dependencies.md: ~0.1 s for 20k faces). Faces
take their part's palette colour scaled by a Lambert term of the face normal, so shapes read as 3D, and
a legend maps colours to part names. Shapes are y-up (ShapeNet); the camera looks from a fixed 3/4 view
so renders of different shapes compare. Meshes of hundreds of thousands of faces render in seconds:
mesh at a lower resolution for figures.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

from shd.atomic import write_with  # noqa: E402
from shd.eval.meshing import MeshResult  # noqa: E402
from shd.eval.palette import part_name, part_rgb  # noqa: E402

ELEVATION = 20.0
AZIMUTH = -50.0
ZOOM = 1.35  # the [-0.5, 0.5]^3 box fills the panel; shapes use at most 95% of it
AMBIENT = 0.25
PANEL_INCHES = 3.2


def _light() -> np.ndarray:
    """Unit direction towards the light in the data frame: from the camera, raised and to the left."""
    el, az = np.radians(ELEVATION), np.radians(AZIMUTH)
    eye = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])  # plot frame
    left = np.cross([0.0, 0.0, 1.0], eye)
    light = eye + 1.0 * np.array([0.0, 0.0, 1.0]) + 0.9 * left / np.linalg.norm(left)
    light = light[[1, 2, 0]]  # plot (X, Y, Z) = data (z, x, y)
    return light / np.linalg.norm(light)


LIGHT = _light()


def _eye() -> np.ndarray:
    """Unit direction towards the camera in the data frame (for back-face culling)."""
    el, az = np.radians(ELEVATION), np.radians(AZIMUTH)
    eye = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return eye[[1, 2, 0]]


EYE = _eye()


def _to_plot_frame(v: np.ndarray) -> np.ndarray:
    """Data (x, y, z) with y up -> matplotlib (z, x, y) with the third axis up (a rotation, no mirror)."""
    return v[..., [2, 0, 1]]


def _visible_shaded(mesh: MeshResult) -> tuple[np.ndarray, np.ndarray]:
    """Triangles facing the camera (closed meshes: the others are hidden) and their shaded colours.

    Culling halves the work and stops back faces from showing through the seams between polygons.
    """
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    front = normals @ EYE > -0.05
    lambert = np.clip(normals[front] @ LIGHT, 0.0, 1.0)
    shade = AMBIENT + (1 - AMBIENT) * lambert
    base = 0.85 * part_rgb(mesh.face_labels[front]) + 0.15  # a little lighter than the legend patches
    return tri[front], np.clip(base * shade[:, None], 0, 1)


def draw_mesh(ax, mesh: MeshResult, caption: str | None = None) -> None:
    """Draw one mesh into a 3D axes; a mesh that failed shows its status instead."""
    ax.set_axis_off()
    ax.view_init(elev=ELEVATION, azim=AZIMUTH)
    lim = (-0.5, 0.5)
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_zlim(*lim)
    ax.set_box_aspect((1, 1, 1), zoom=ZOOM)
    if mesh.ok and len(mesh.faces):
        tri, colors = _visible_shaded(mesh)
        # edges in the face colour cover the anti-aliasing seams between neighbouring triangles
        ax.add_collection3d(
            Poly3DCollection(_to_plot_frame(tri), facecolors=colors, edgecolors=colors, linewidths=0.15)
        )
    else:
        reason = textwrap.fill(mesh.reason, 36, max_lines=3, placeholder="...")
        ax.text2D(
            0.5,
            0.5,
            f"{mesh.status}\n{reason}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="0.4",
        )
    if caption:
        ax.text2D(0.5, 0.02, caption, transform=ax.transAxes, ha="center", va="bottom", fontsize=9)


def _legend(fig, meshes: Sequence[MeshResult], part_names: Sequence[str] | None) -> None:
    labels = sorted({int(lab) for m in meshes if m.ok for lab in np.unique(m.face_labels)})
    if part_names is not None:
        labels = sorted(set(labels) | set(range(len(part_names))))
    if not labels:
        return
    handles = [Patch(facecolor=part_rgb(np.array(i)), label=part_name(i, part_names)) for i in labels]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def _grid_figure(
    meshes: Sequence[MeshResult],
    captions: Sequence[str] | None,
    ncols: int | None,
    part_names: Sequence[str] | None,
    title: str | None,
):
    """The figure of a grid of meshes (the caller saves and closes it)."""
    if not meshes:
        raise ValueError("nothing to render: no meshes given")
    n = len(meshes)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    legend_h = 0.35
    fig = plt.figure(figsize=(PANEL_INCHES * ncols, PANEL_INCHES * nrows + legend_h + (0.3 if title else 0)))
    try:
        for k, mesh in enumerate(meshes):
            ax = fig.add_subplot(nrows, ncols, k + 1, projection="3d")
            draw_mesh(ax, mesh, captions[k] if captions is not None else None)
        _legend(fig, meshes, part_names)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.subplots_adjust(
            left=0,
            right=1,
            bottom=legend_h / fig.get_figheight(),
            top=0.95 if title else 1,
            wspace=0,
            hspace=0.05,
        )
    except BaseException:
        plt.close(fig)
        raise
    return fig


def render_grid(
    meshes: Sequence[MeshResult],
    path: str | os.PathLike,
    *,
    captions: Sequence[str] | None = None,
    ncols: int | None = None,
    part_names: Sequence[str] | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Render meshes in a grid (row-major, `ncols` wide, about square by default) to a PNG."""
    fig = _grid_figure(meshes, captions, ncols, part_names, title)
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, facecolor="white"))
    finally:
        plt.close(fig)
    return Path(path)


def render_gif(
    meshes: Sequence[MeshResult],
    path: str | os.PathLike,
    *,
    captions: Sequence[str] | None = None,
    part_names: Sequence[str] | None = None,
    frame_ms: int = 250,
    dpi: int = 80,
) -> Path:
    """One frame per mesh, looping, as an animated GIF (interpolations); same camera and legend in
    every frame (all of `part_names` listed), so only the shape moves."""
    from PIL import Image  # matplotlib's own image dependency

    if not meshes:
        raise ValueError("nothing to render: no meshes given")
    frames = []
    for k, mesh in enumerate(meshes):
        fig = _grid_figure([mesh], [captions[k]] if captions is not None else None, 1, part_names, None)
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
        finally:
            plt.close(fig)
        buf.seek(0)
        frames.append(Image.open(buf).convert("RGB"))
    write_with(
        path,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
        ),
    )
    return Path(path)


def render_mesh(
    mesh: MeshResult,
    path: str | os.PathLike,
    *,
    caption: str | None = None,
    part_names: Sequence[str] | None = None,
    dpi: int = 100,
) -> Path:
    """Render one mesh to a PNG."""
    return render_grid([mesh], path, captions=[caption] if caption else None, part_names=part_names, dpi=dpi)


def render_strip(
    meshes: Sequence[MeshResult],
    path: str | os.PathLike,
    *,
    captions: Sequence[str] | None = None,
    part_names: Sequence[str] | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Render meshes side by side in one row (interpolations, hybrids: parents -> child)."""
    return render_grid(
        meshes, path, captions=captions, ncols=len(meshes), part_names=part_names, title=title, dpi=dpi
    )
