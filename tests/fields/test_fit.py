import json

import pytest
import torch

from shd.errors import InputError
from shd.fields.fit import fit_sample_set
from shd.fields.layout import flatten
from shd.fields.moe import combine, expert_logits
from shd.fields.weight_set import WeightSet, load_field, load_params
from shd.shards import read_shard


class Stop(Exception):
    pass


def _all_params(out_dir) -> dict[str, torch.Tensor]:
    ws = WeightSet.open(out_dir)
    ids = ws.ids(status=None)
    return dict(zip(ids, ws.load_flat(ids), strict=True))


def test_fit_writes_a_loadable_weight_set(sample_dir, tmp_path, tiny):
    seen = []
    summary = fit_sample_set(sample_dir, tmp_path, tiny(), progress=seen.append)
    assert summary["n_shapes"] == 5 and summary["n_bad"] == 0 and 0 <= summary["iou_mean"] <= 1
    keys = ("iou_mean", "iou_part_mean", "n_shapes", "n_bad", "n_failed")
    assert WeightSet.open(tmp_path).summary() == {k: summary[k] for k in keys}
    assert [e["done_shapes"] for e in seen] == [2, 4, 5]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rec = manifest["shapes"][0]
    assert {"shape_id", "category", "split", "loss", "iou", "part_iou", "status", "reason"} <= set(rec)
    assert len(rec["part_iou"]) == 4 and manifest["layout"]["blocks"][0]["part"] == "body"
    assert {r["split"] for r in manifest["shapes"]} == {"train", "val", "test"}

    ws = WeightSet.open(tmp_path)
    ids = ws.ids()
    params = load_params(tmp_path, ids)
    assert torch.equal(flatten(params), ws.load_flat(ids))
    pts = torch.rand(len(ids), 100, 3) - 0.5
    batched = expert_logits(params, pts, ws.field)
    for i, s in enumerate(ids):
        field = load_field(tmp_path, s)
        assert torch.allclose(field.expert_logits(pts[i]), batched[i], atol=1e-5)
        assert torch.allclose(field(pts[i]), combine(batched[i], ws.field), atol=1e-5)


def test_resume_after_interruption_matches_uninterrupted(sample_dir, tmp_path, tiny):
    cfg = tiny()
    fit_sample_set(sample_dir, tmp_path / "full", cfg)

    def stop_after_first_shard(event):
        raise Stop

    with pytest.raises(Stop):
        fit_sample_set(sample_dir, tmp_path / "cut", cfg, progress=stop_after_first_shard)
    assert not (tmp_path / "cut" / "manifest.json").exists()
    kept = (tmp_path / "cut" / "shard-00000.safetensors").stat().st_mtime_ns
    summary = fit_sample_set(sample_dir, tmp_path / "cut", cfg)
    assert summary["reused_shards"] == 1 and summary["fitted_shards"] == 2
    assert (tmp_path / "cut" / "shard-00000.safetensors").stat().st_mtime_ns == kept
    full, cut = _all_params(tmp_path / "full"), _all_params(tmp_path / "cut")
    assert full.keys() == cut.keys()
    for s in full:
        assert torch.allclose(full[s], cut[s], rtol=1e-5, atol=1e-6)
    again = fit_sample_set(sample_dir, tmp_path / "cut", cfg)
    assert again["reused_shards"] == 3 and again["fitted_shards"] == 0
    changed = fit_sample_set(sample_dir, tmp_path / "cut", tiny(lr=5e-3))
    assert changed["fitted_shards"] == 3


def test_array_job_shards_merge(sample_dir, tmp_path, tiny):
    cfg = tiny()
    first = fit_sample_set(sample_dir, tmp_path, cfg, shard=(0, 2))
    assert first["fitted_shards"] == 2 and "n_shapes" not in first  # shard 1 still missing
    assert not (tmp_path / "manifest.json").exists()
    second = fit_sample_set(sample_dir, tmp_path, cfg, shard=(1, 2))
    assert second["fitted_shards"] == 1 and second["n_shapes"] == 5


def test_bad_fits_are_marked_and_excluded(sample_dir, tmp_path, tiny):
    summary = fit_sample_set(sample_dir, tmp_path, tiny(min_iou=0.999, max_steps=10))
    ws = WeightSet.open(tmp_path)
    assert summary["n_bad"] == 5 and ws.ids() == [] and len(ws.ids(status=None)) == 5
    assert all("min_iou" in ws.record(s)["reason"] for s in ws.ids(status="bad"))


def test_a_nan_shape_fails_alone(make_samples, tmp_path, tiny):
    samples = make_samples(tmp_path / "samples", n_shapes=4, nan_shape=0)
    summary = fit_sample_set(samples, tmp_path / "w", tiny(init="first_shape"))
    ws = WeightSet.open(tmp_path / "w")
    failed = ws.ids(status="failed")
    assert failed == ["airplane_0_000"] and summary["n_failed"] == 1 and len(ws.ids()) == 3
    # the shared init falls back to the next shape when the first one's fit fails
    assert read_shard(tmp_path / "w" / "init.safetensors")[1]["shape_ids"] == ["airplane_0_001"]
    assert "non-finite" in ws.record(failed[0])["reason"] and ws.record(failed[0])["iou"] is None
    assert torch.isnan(ws.load_flat(failed)).all() and torch.isfinite(ws.load_flat(ws.ids())).all()


def test_first_shape_init_and_splits(sample_dir, tmp_path, tiny):
    cfg = tiny(init="first_shape", splits=("train",))
    summary = fit_sample_set(sample_dir, tmp_path, cfg)
    assert summary["n_shapes"] == 3
    init = read_shard(tmp_path / "init.safetensors")[0]["params"]
    assert init.shape == (WeightSet.open(tmp_path).layout.dim,)
    assert fit_sample_set(sample_dir, tmp_path, cfg)["fitted_shards"] == 0


def test_expert_count_must_match_the_category(sample_dir, tmp_path, tiny):
    from dataclasses import replace

    cfg = tiny()
    with pytest.raises(InputError, match="one expert per part"):
        fit_sample_set(sample_dir, tmp_path, replace(cfg, field=replace(cfg.field, n_experts=3)))


def test_single_field_fits_on_occupancy(sample_dir, tmp_path, tiny):
    from shd.fields.config import FieldConfig

    summary = fit_sample_set(
        sample_dir, tmp_path, tiny(field=FieldConfig(n_experts=1, hidden=(16,), n_freqs=2, semantic=False))
    )
    assert summary["iou_part_mean"] is None and summary["n_shapes"] == 5
    rec = WeightSet.open(tmp_path).manifest["shapes"][0]
    assert rec["part_iou"] == [] and rec["iou"] is not None
