import matplotlib.image as mpimg
import numpy as np

from shd.eval.meshing import MeshResult, mesh_fields
from shd.eval.render import render_grid, render_mesh, render_strip

from .analytic import airplane_field, constant_field, per_shape_field, two_sphere_field

PARTS = ["body", "wing", "tail", "engine"]


def _load(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    return img[..., :3]


def test_single_render_is_the_expected_size_and_not_blank(tmp_path):
    mesh = mesh_fields(airplane_field(), 1, resolution=40)[0]
    img = _load(render_mesh(mesh, tmp_path / "one.png", caption="airplane", part_names=PARTS, dpi=50))
    from shd.eval.render import PANEL_INCHES

    assert img.shape[1] == round(PANEL_INCHES * 50)
    colored = (img.max(axis=2) - img.min(axis=2)) > 0.2  # saturated pixels: the parts, not grey/white
    assert colored.mean() > 0.01


def test_grid_and_strip_show_failed_meshes_without_crashing(tmp_path):
    field = per_shape_field([two_sphere_field(), constant_field(-5.0, 2)])
    meshes = mesh_fields(field, 2, resolution=20) + [MeshResult.failed("nan", "NaN weights")]
    grid = _load(render_grid(meshes, tmp_path / "grid.png", captions=["a", "b", "c"], ncols=2, dpi=40))
    strip = _load(render_strip(meshes, tmp_path / "strip.png", title="strip", dpi=40))
    assert grid.shape[0] > grid.shape[1] * 0.9  # 2 rows of 2 columns
    assert strip.shape[1] > 2.2 * strip.shape[0]  # one row of 3
    assert np.std(strip) > 0.01


def test_gif_has_one_frame_per_mesh_that_differ(tmp_path):
    from PIL import Image

    from shd.eval.render import render_gif

    field = per_shape_field([two_sphere_field(), airplane_field()])
    meshes = mesh_fields(field, 2, resolution=20) + [MeshResult.failed("empty", "no surface")]
    path = render_gif(meshes, tmp_path / "anim.gif", captions=["a", "b", "c"], part_names=PARTS, dpi=30)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        frames = []
        for k in range(3):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.float32))
    assert all(f.shape == frames[0].shape for f in frames)
    assert np.abs(frames[0] - frames[1]).mean() > 1.0  # different shapes, different frames
