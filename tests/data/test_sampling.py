import numpy as np
import pytest

from shd.data.sample_store import SampleSet
from shd.data.sampling import SamplingConfig, sample_shape, sample_shapes
from shd.errors import InputError
from shd.shards import read_shard_meta

from .builders import box_plane

SMALL = SamplingConfig(
    n_near=3000,
    n_uniform=3000,
    n_eval_near=1000,
    n_eval_uniform=1000,
    n_surface=512,
    shard_size=2,
    seed=3,
    workers=1,
)


def test_sample_statistics(plane):
    out = sample_shape(plane, SMALL)
    n = SMALL.n_near + SMALL.n_uniform
    assert out["points"].shape == (n, 3) and out["points"].dtype == np.float32
    near, uni = out["points"][: SMALL.n_near], out["points"][SMALL.n_near :]
    assert np.abs(uni).max() <= 0.5
    # near-surface points sit within a few sigma of the surface: about half of them inside
    assert 0.3 < out["occupancy"][: SMALL.n_near].mean() < 0.7
    # uniform inside ratio ~ the shape's volume fraction of the unit cube
    s = plane.meta["scale"]
    volume = (1.0 * 0.2 * 0.2 + 0.3 * 0.04 * 1.6 - 0.3 * 0.04 * 0.2) * s**3
    assert abs(out["occupancy"][SMALL.n_near :].mean() - volume) < 0.01
    # every inside point has a part label, every outside point has -1
    occ = out["occupancy"].astype(bool)
    assert (out["labels"][occ] >= 0).all() and (out["labels"][~occ] == -1).all()
    assert set(np.unique(out["labels"][occ])) == {0, 1}
    assert out["surface"].shape == (512, 3) and set(np.unique(out["surface_labels"])) == {0, 1}
    # the held-out set is drawn independently
    assert not np.allclose(out["eval_points"][:10], out["points"][:10])
    assert near.std() > 0


def test_sampling_is_deterministic(plane):
    a, b = sample_shape(plane, SMALL), sample_shape(plane, SMALL)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _write_shapes(tmp_path, n):
    paths = []
    for i in range(n):
        shape = box_plane(f"plane-{i}", split=["train", "val", "test"][i % 3], wing_span=1.2 + 0.1 * i)
        path = tmp_path / "shapes" / f"{shape.shape_id}.npz"
        shape.save(path)
        paths.append(path)
    return paths


def test_sample_set_round_trip_and_resume(tmp_path):
    paths = _write_shapes(tmp_path, 3)
    cats = {"airplane": ["body", "wing", "tail", "engine"]}
    out = tmp_path / "samples"
    summary = sample_shapes(paths, out, SMALL, cats)
    assert summary == {"n_shapes": 3, "n_shards": 2, "reused_shards": 0}
    ss = SampleSet.open(out)
    assert ss.ids() == ["plane-0", "plane-1", "plane-2"]
    assert ss.ids(split="val") == ["plane-1"]
    batch = ss.load(["plane-2", "plane-0"])
    direct = sample_shape(box_plane("plane-2", split="test", wing_span=1.4), SMALL)
    np.testing.assert_array_equal(batch["points"][0], direct["points"])
    assert batch["occupancy"].shape == (2, 6000)
    # a rerun keeps finished shards (resume) ...
    stamp = (out / "shard-00000.safetensors").stat().st_mtime_ns
    assert sample_shapes(paths, out, SMALL, cats)["reused_shards"] == 2
    assert (out / "shard-00000.safetensors").stat().st_mtime_ns == stamp
    # ... but a changed config resamples and drops shards that no longer belong
    again = sample_shapes(paths[:2], out, SamplingConfig(**{**SMALL.__dict__, "seed": 4}), cats)
    assert again["reused_shards"] == 0 and not (out / "shard-00001.safetensors").exists()
    assert read_shard_meta(out / "shard-00000.safetensors")["shape_ids"] == ["plane-0", "plane-1"]


def test_interrupted_sampling_leaves_no_partial_shard(tmp_path, monkeypatch):
    paths = _write_shapes(tmp_path, 3)
    cats = {"airplane": ["body", "wing", "tail", "engine"]}
    import shd.data.sampling as sampling

    calls = {"n": 0}
    real = sampling.sample_shape

    def dying(shape, cfg):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while working on the second shard
        return real(shape, cfg)

    monkeypatch.setattr(sampling, "sample_shape", dying)
    with pytest.raises(KeyboardInterrupt):
        sample_shapes(paths, tmp_path / "s", SMALL, cats)
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == ["shard-00000.safetensors"]  # no manifest, no half shard, no temp file
    monkeypatch.setattr(sampling, "sample_shape", real)
    assert sample_shapes(paths, tmp_path / "s", SMALL, cats)["reused_shards"] == 1


def test_missing_or_bad_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="manifest.json: missing"):
        SampleSet.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        SampleSet.open(tmp_path)
