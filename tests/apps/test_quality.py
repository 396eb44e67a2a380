import dataclasses
import json

from shd.apps.examples import write_examples
from shd.apps.quality import quality_figures, write_quality
from shd.data.sample_store import SampleSet

from .conftest import FAST


def test_quality_figures_cover_the_three_applications(sampler, weights, tiny_project, tmp_path):
    cfg = dataclasses.replace(FAST, quality_pairs=1, quality_keep=("body", "wing"))
    samples = SampleSet.open(tiny_project / "data" / "samples")
    report = quality_figures(sampler, weights, samples, cfg=cfg, strengths=[0.3])
    assert report["category"] == "airplane"
    hyb = report["hybrid"]
    assert len(hyb["pairs"]) == 1 and set(hyb["variants"]) == {"stitched", "harmonized_0.3"}
    assert sum(hyb["variants"]["stitched"]["mesh_status"].values()) == 4  # one hybrid per part
    comp = report["completion"]
    assert comp["kept_bit_identical"] is True and comp["generated"] == ["tail", "engine"]
    assert {"completion", "plain_samples", "parents"} <= set(comp) and comp["n_reference"] >= 1
    for method in ("linear", "slerp"):
        assert report["interpolation"][method]["n"] == 4  # 1 pair x 4 parts
    path = write_quality(tmp_path / "metrics" / "apps.json", report)
    assert json.loads(path.read_text()) == report


def test_examples_write_one_folder_per_command(sampler, weights, tmp_path):
    summaries = write_examples(sampler, weights, tmp_path / "apps", cfg=FAST)
    for name in ("hybrid", "interpolate", "complete"):
        assert (tmp_path / "apps" / name / "summary.json").exists()
        assert summaries[name]["command"] == name
    assert summaries["hybrid"]["sources"]["engine"] == "a" and summaries["hybrid"]["sources"]["body"] == "b"
