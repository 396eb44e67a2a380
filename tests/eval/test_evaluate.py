import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import shd.atomic
from shd.data.sample_store import SampleSet
from shd.errors import InputError
from shd.eval import evaluate as ev
from shd.eval.evaluate import (
    GENERATED_KEY,
    EvalPaths,
    EvaluateConfig,
    evaluate_stage,
    evaluate_weight_vectors,
)
from shd.eval.metrics import generation_metrics, n_to_generate
from shd.eval.pointclouds import sample_clouds
from shd.eval.reconstruct import mesh_weights
from shd.fields.weight_set import WeightSet
from shd.shards import read_shard

from .evaluate_data import BAD_TEST, BOX_FIELD, PARTS, SPLITS, make_project, nan_rows

CFG = EvaluateConfig(resolution=32, render_resolution=32, n_points=256, render_count=4, device="cpu")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny ops; other jobs share the 2 cores


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def staged(project, tmp_path_factory):
    """One stage run (with the baseline yardstick), shared by the read-only checks."""
    paths = EvalPaths.under(tmp_path_factory.mktemp("out"))
    cfg = replace(CFG, baseline_weights=str(project.baseline))
    return evaluate_stage(project.weights, project.samples, paths, cfg), paths


def _clouds(project, split):
    samples = SampleSet.open(project.samples)
    return samples.load(samples.ids(split=split), ("surface", "surface_labels"))


def test_stage_writes_the_metrics_of_record(project, staged):
    report, paths = staged
    on_disk = json.loads(paths.metrics.read_text())
    assert on_disk == json.loads(json.dumps(report))
    for key in (
        "mmd",
        "cov",
        "nna",
        "n_generated",
        "n_empty",
        "normalization",
        "generator",
        "parts",
        "novelty",
        "yardsticks",
    ):
        assert key in on_disk, key
    assert on_disk["generator"] == "test_reconstruction" and on_disk["normalization"] == "unit_std"
    n_test = SPLITS.count("test")
    assert on_disk["n_generated"] == n_test - 1 and on_disk["n_empty"] == 0  # the bad fit is left out
    assert on_disk["n_reference"] == n_test
    assert set(on_disk["parts"]) == set(PARTS) and math.isfinite(on_disk["parts"]["body"]["mmd"])
    assert on_disk["novelty"]["n_train"] == SPLITS.count("train")
    baseline = on_disk["yardsticks"]["single_baseline"]
    assert baseline["n_generated"] == n_test - 1 and baseline["parts"] is None  # one expert: no parts
    assert baseline["n_reference"] == n_test and math.isfinite(baseline["mmd"])


def test_plot_csv_and_render_grid(project, staged):
    report, paths = staged
    rows = list(csv.DictReader(paths.nn_cd.open()))
    ids = [project.ids[i] for i, s in enumerate(SPLITS) if s == "test" and i != BAD_TEST]
    assert [r["shape_id"] for r in rows] == ids
    for r in rows:
        assert float(r["nearest_reference_cd"]) > 0 and float(r["nearest_train_cd"]) > 0
    assert min(float(r["nearest_reference_cd"]) for r in rows) <= report["mmd"]  # min <= mean of minima
    assert paths.grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_as_generator_uses_the_same_references(project, staged):
    report, _ = staged
    row = report["yardsticks"]["train_as_generator"]
    n_ref = SPLITS.count("test")
    assert row["n_reference"] == report["n_reference"] == n_ref
    assert row["n_generated"] == n_to_generate(n_ref) and row["n_evaluated"] == n_ref
    train, test = _clouds(project, "train"), _clouds(project, "test")
    pick = np.random.default_rng(CFG.seed).choice(len(train["surface"]), row["n_generated"], replace=False)
    direct = generation_metrics(train["surface"][pick], test["surface"], normalization="unit_std")
    for key in ("mmd", "cov"):
        assert row[key] == pytest.approx(direct[key])
    assert row["nna"] == pytest.approx(direct["1-nna"])
    assert set(row["parts"]) == set(PARTS) and "novelty" not in row


def test_metrics_equal_a_direct_generation_metrics_call(project, staged):
    report, _ = staged
    weights = WeightSet.open(project.weights)
    flat = weights.load_flat(weights.ids(split="test"))
    meshes = mesh_weights(flat, weights.layout, weights.field, resolution=CFG.resolution, level=CFG.level)
    clouds = sample_clouds(meshes, CFG.n_points, seed=CFG.seed)
    direct = generation_metrics(
        clouds.points, _clouds(project, "test")["surface"], normalization=CFG.normalization
    )
    assert report["mmd"] == pytest.approx(direct["mmd"], rel=1e-9)
    assert report["cov"] == pytest.approx(direct["cov"])
    assert report["nna"] == pytest.approx(direct["1-nna"])
    assert report["nna_ci95"] == pytest.approx(direct["1-nna_ci95"])  # same resamples (seed)


def test_every_row_and_the_summary_line_carry_the_1nna_interval(staged):
    report, _ = staged
    for row in (report, *report["yardsticks"].values()):
        low, high = row["nna_ci95"]
        assert low <= row["nna"] <= high and row["nna_resamples"] == CFG.nna_resamples
    low, high = report["nna_ci95"]
    assert f"(95% CI {low:.3f}-{high:.3f})" in ev.summary_line(report)


def test_nan_weights_count_as_empty_and_do_not_crash(project):
    weights = WeightSet.open(project.weights)
    flat = weights.load_flat(weights.ids(split="test"))
    flat = torch.cat([nan_rows(flat, [0]), torch.zeros(1, flat.shape[1])])  # NaN row, all-zero (empty) field
    samples = SampleSet.open(project.samples)
    reference = ev.surface_clouds(samples, samples.ids(split="test"))
    out = evaluate_weight_vectors(flat, weights.layout, BOX_FIELD, reference, cfg=CFG, part_names=PARTS)
    m = out["metrics"]
    assert m["n_generated"] == 3 and m["n_empty"] == 2
    assert m["mesh_status"]["nan"] == 1 and m["mesh_status"]["empty"] == 1
    assert out["per_sample"]["index"] == [1] and out["meshes"][0].status == "nan"

    all_nan = evaluate_weight_vectors(
        nan_rows(flat, [0, 1, 2]), weights.layout, BOX_FIELD, reference, cfg=CFG, part_names=PARTS
    )
    assert all_nan["metrics"]["n_empty"] == 3 and all_nan["metrics"]["n_evaluated"] == 0
    assert ev.json_ready(all_nan["metrics"])["mmd"] is None  # JSON-ready: NaN -> null


def test_kept_samples_agree_with_the_metrics_and_the_plot(project, staged):
    """data/eval/: the weights scored and each sample's nearest shapes, consistent with MMD/COV and CSV."""
    report, paths = staged
    kept = json.loads(paths.samples.read_text())
    samples = SampleSet.open(project.samples)
    test_ids, train_ids = samples.ids(split="test"), samples.ids(split="train")
    rows, refs = kept["generated"], kept["references"]
    assert len(rows) == report["n_generated"] and sum(r["scored"] for r in rows) == report["n_evaluated"]
    assert [r["id"] for r in refs] == test_ids
    assert np.mean([r["nearest_generated_cd"] for r in refs]) == pytest.approx(report["mmd"])
    assert np.mean([r["n_nearest_of"] > 0 for r in refs]) == pytest.approx(report["cov"])
    with open(paths.nn_cd) as fh:
        plotted = {int(r["generated_index"]): r for r in csv.DictReader(fh)}
    for r in rows:
        assert r["nearest_train"]["id"] in train_ids  # every meshed sample has its nearest training shape
        if r["scored"]:
            row = plotted[r["index"]]
            assert r["nearest_reference"]["id"] in test_ids
            assert r["nearest_reference"]["cd"] == pytest.approx(float(row["nearest_reference_cd"]), rel=1e-5)
            assert r["nearest_train"]["cd"] == pytest.approx(float(row["nearest_train_cd"]), rel=1e-5)
    weights = WeightSet.open(project.weights)
    kept_flat, _ = read_shard(paths.generated, [GENERATED_KEY])
    expected = weights.load_flat([r["shape_id"] for r in rows]).numpy()
    np.testing.assert_array_equal(kept_flat[GENERATED_KEY], expected)


def test_generated_weights_are_evaluated_and_rendered_with_empties(project, tmp_path):
    weights = WeightSet.open(project.weights)
    flat = weights.load_flat(weights.ids(split="train"))
    cfg = replace(CFG, render_resolution=24)
    report = evaluate_stage(
        project.weights,
        project.samples,
        EvalPaths.under(tmp_path),
        cfg,
        generated=nan_rows(flat, [1]),
        generator_name="sampler",
    )
    assert report["generator"] == "sampler" and report["n_generated"] == len(flat)
    assert report["n_empty"] == 1 and report["n_evaluated"] == SPLITS.count("test")  # clipped to n_ref
    assert report["clipped_generated"] == len(flat) - 1 - SPLITS.count("test")
    assert (tmp_path / "reports/eval_grid.png").exists()
    with pytest.raises(InputError, match="layout"):
        evaluate_stage(
            project.weights, project.samples, EvalPaths.under(tmp_path), cfg, generated=flat[:, :10]
        )


def test_a_failure_before_the_last_write_leaves_no_metrics(project, tmp_path, monkeypatch):
    def broken_render(*args, **kwargs):
        raise RuntimeError("render died")

    monkeypatch.setattr(ev, "render_generated", broken_render)
    paths = EvalPaths.under(tmp_path)
    with pytest.raises(RuntimeError, match="render died"):
        evaluate_stage(project.weights, project.samples, paths, CFG)
    assert paths.nn_cd.exists() and not paths.metrics.exists()


def test_the_metrics_write_is_atomic(project, tmp_path, monkeypatch):
    """A kill in the middle of writing eval.json leaves no file, not half of one."""
    real_replace = shd.atomic.os.replace

    def killed(src, dst):
        if str(dst).endswith("eval.json"):
            raise KeyboardInterrupt  # the process dies between writing the data and renaming it
        real_replace(src, dst)

    monkeypatch.setattr(shd.atomic.os, "replace", killed)
    paths = EvalPaths.under(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        evaluate_stage(project.weights, project.samples, paths, CFG)
    assert paths.grid.exists() and not paths.metrics.exists()
    left = [p for p in paths.metrics.parent.iterdir() if p != paths.grid]
    assert left == []  # no temporary left behind (the grid PNG shares the folder of reports/eval.json)


def test_config_errors_name_the_key(project):
    with pytest.raises(InputError, match="evaluate.normalization"):
        EvaluateConfig(normalization="sphere")
    with pytest.raises(InputError, match="evaluate.category"):
        evaluate_stage(project.weights, project.samples, cfg=EvaluateConfig(category="boat"))
