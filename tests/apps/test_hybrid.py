import json

import pytest
import torch

from shd.apps.hybrid import assign_parts, make_hybrid, run_hybrid
from shd.apps.parents import expert_mask, resolve_parents
from shd.errors import InputError
from shd.shards import read_shard

from .conftest import FAST

PARTS = ["body", "wing", "tail", "engine"]


def test_parts_are_assigned_once_and_default_to_parent_a():
    assert assign_parts(PARTS, "airplane", "engine", "body,wing") == {
        "body": "b",
        "wing": "b",
        "tail": "a",
        "engine": "a",
    }
    with pytest.raises(InputError, match="^parts_a/parts_b: wing named for both"):
        assign_parts(PARTS, "airplane", "wing", "wing,tail")
    with pytest.raises(InputError, match="^parts_b: part 'wings'.*valid parts: body, wing, tail, engine"):
        assign_parts(PARTS, "airplane", None, "wings")


def test_without_harmonization_each_expert_is_its_parents_bit_for_bit(sampler, weights, airplanes):
    pa, pb = resolve_parents(airplanes[:2], sampler, weights)
    sources = assign_parts(PARTS, "airplane", "engine", "body,wing,tail")
    h = make_hybrid(sampler, pa, pb, sources, harmonize=0.0)
    assert h.harmonized is None
    from_b = expert_mask(sampler, [0, 1, 2])
    assert torch.equal(h.stitched[from_b], pb.flat[from_b])
    assert torch.equal(h.stitched[~from_b], pa.flat[~from_b])
    assert not torch.equal(h.stitched, pa.flat) and not torch.equal(h.stitched, pb.flat)
    with pytest.raises(InputError, match="^n: 2 hybrids .* identical copies"):
        make_hybrid(sampler, pa, pb, sources, harmonize=0.0, n=2)


def test_harmonized_variants_move_the_weights(sampler, weights, airplanes):
    pa, pb = resolve_parents(airplanes[:2], sampler, weights)
    sources = assign_parts(PARTS, "airplane", None, "wing")
    h = make_hybrid(sampler, pa, pb, sources, harmonize=0.3, n=2, steps=FAST.steps)
    assert h.harmonized.shape == (2, sampler.layout.dim) and torch.isfinite(h.harmonized).all()
    assert not torch.equal(h.harmonized[0], h.harmonized[1])
    assert not torch.equal(h.harmonized[0], h.stitched)
    with pytest.raises(InputError, match="leaves no denoising step"):
        make_hybrid(sampler, pa, pb, sources, harmonize=0.01, steps=4)


def test_run_hybrid_writes_meshes_strip_weights_and_summary(sampler, weights, airplanes, tmp_path):
    out = tmp_path / "hybrid"
    summary = run_hybrid(
        sampler,
        out,
        parts_a="engine",
        parts_b="body,wing,tail",
        parent_a=airplanes[0],
        parent_b="sample:1",
        weights=weights,
        n=2,
        harmonize=0.3,
        cfg=FAST,
    )
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary and summary["command"] == "hybrid"
    assert summary["parents"]["a"]["shape_id"] == airplanes[0] and summary["parents"]["b"]["seed"] == 1
    assert summary["sources"] == {"body": "b", "wing": "b", "tail": "b", "engine": "a"}
    assert [m["name"] for m in summary["meshes"]] == [
        "parent_a",
        "parent_b",
        "hybrid_stitched",
        "hybrid_00",
        "hybrid_01",
    ]
    for m in summary["meshes"]:
        if m["file"]:
            assert (out / m["file"]).stat().st_size > 0
    assert summary["meshes"][0]["file"] is not None  # a fitted airplane meshes
    assert (out / summary["png"]).stat().st_size > 1000
    fid = summary["part_cd_to_source"]
    assert set(fid["stitched"]) == set(PARTS) and len(fid["harmonized"]) == 2
    tensors, _ = read_shard(out / summary["weights"])
    from_b = expert_mask(sampler, [0, 1, 2]).numpy()
    assert (tensors["stitched"][0][~from_b] == weights.load_flat([airplanes[0]])[0].numpy()[~from_b]).all()
    assert tensors["harmonized"].shape == (2, sampler.layout.dim)


def test_hybrid_of_two_categories_is_refused(sampler, weights, airplanes, chairs, tmp_path):
    with pytest.raises(InputError, match="mix categories"):
        run_hybrid(
            sampler,
            tmp_path / "x",
            parts_b="wing",
            parent_a=airplanes[0],
            parent_b=chairs[0],
            weights=weights,
            harmonize=0.0,
            cfg=FAST,
        )
    assert not (tmp_path / "x" / "summary.json").exists()
