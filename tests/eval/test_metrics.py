import numpy as np
import pytest

from shd.eval.chamfer import chamfer_matrix
from shd.eval.metrics import (
    bootstrap_draws,
    generation_metrics,
    mmd_cov,
    n_to_generate,
    nearest_in,
    novelty,
    one_nna,
    one_nna_ci,
    one_nna_resampled,
    part_chamfer,
    part_metrics,
)

from . import loop_reference as ref


def line_clouds(xs):
    """One-point clouds on the x axis: CD between them is 2 (a - b)^2."""
    return np.array([[[x, 0.0, 0.0]] for x in xs])


GEN = line_clouds([0.1, 0.25])
REF = line_clouds([0.0, 1.0, 5.0])


def test_mmd_cov_1nna_by_hand():
    d_gr = chamfer_matrix(GEN, REF)
    # nearest generated per reference: 2*0.1^2, 2*0.75^2, 2*4.75^2
    mmd, cov = mmd_cov(d_gr)
    assert mmd == pytest.approx((0.02 + 1.125 + 45.125) / 3)
    assert cov == pytest.approx(1 / 3)  # both generated clouds are nearest to the reference at 0
    # nearest other cloud: 0.1 -> ref 0 (wrong), 0.25 -> gen 0.1 (right), 0 -> gen 0.1 (wrong),
    # 1 -> gen 0.25 (wrong), 5 -> ref 1 (right)
    nna = one_nna(chamfer_matrix(GEN), d_gr, chamfer_matrix(REF))
    assert nna == {
        "1-nna": pytest.approx(0.4),
        "1-nna_generated": 0.5,
        "1-nna_reference": pytest.approx(1 / 3),
    }


def test_metrics_match_the_loop_reference():
    rng = np.random.default_rng(0)
    gen, refs = rng.normal(size=(4, 24, 3)), rng.normal(size=(5, 24, 3)) * 1.2
    d_gr = chamfer_matrix(gen, refs)
    np.testing.assert_allclose(mmd_cov(d_gr), ref.mmd_cov(ref.chamfer_matrix(gen, refs)), rtol=1e-9)
    nna = one_nna(chamfer_matrix(gen), d_gr, chamfer_matrix(refs))["1-nna"]
    assert nna == pytest.approx(ref.one_nna(gen, refs))


def test_generation_report_names_normalization_and_skips_nan_clouds():
    rng = np.random.default_rng(1)
    gen, refs = rng.normal(size=(6, 32, 3)), rng.normal(size=(4, 32, 3))
    gen[1, 3] = np.nan
    report = generation_metrics(gen, refs, normalization="bbox")
    assert report["normalization"] == "bbox" and report["distance"] == "chamfer_l2_squared"
    assert report["skipped_generated"] == 1 and report["skipped_reference"] == 0
    assert report["n_generated"] == 4 and report["clipped_generated"] == 1  # 5 usable, clipped to 4
    keep = [0, 2, 3, 4]
    from shd.eval.pointclouds import normalize

    g, r = normalize(gen[keep], "bbox"), normalize(refs, "bbox")
    expected_mmd, expected_cov = ref.mmd_cov(ref.chamfer_matrix(g, r))
    assert report["mmd"] == pytest.approx(expected_mmd, rel=1e-5)
    assert report["cov"] == pytest.approx(expected_cov)
    assert report["1-nna"] == pytest.approx(ref.one_nna(g, r))


def test_all_generated_clouds_bad_gives_nan_not_an_error():
    refs = np.random.default_rng(2).normal(size=(3, 16, 3))
    report = generation_metrics(np.full((2, 16, 3), np.nan), refs, normalization="unit_std")
    assert report["n_generated"] == 0 and report["skipped_generated"] == 2
    assert np.isnan(report["mmd"]) and np.isnan(report["1-nna"])


def test_part_chamfer_reports_missing_parts():
    x = np.array([[0.0, 0, 0], [1, 0, 0], [0, 5, 0]])
    y = np.array([[0.0, 0, 0], [0, 2, 0], [9, 9, 9]])
    out = part_chamfer(x, [0, 0, 1], y, [0, 0, 2], n_parts=4, part_names=["body", "wing", "tail", "engine"])
    assert out["chamfer"]["body"] == pytest.approx(2.5)
    assert out["chamfer"]["wing"] is None and out["chamfer"]["tail"] is None
    assert out["chamfer"]["engine"] is None
    assert out["missing"] == {"wing": "second", "tail": "first"}


def test_part_metrics_per_part_coverage_and_missing_counts():
    rng = np.random.default_rng(3)
    gen, refs = rng.normal(size=(3, 40, 3)), rng.normal(size=(4, 40, 3))
    gen_labels = np.zeros((3, 40), int)
    gen_labels[:, 20:] = 1
    gen_labels[2, 20:] = 0  # generated shape 2 has no part 1
    ref_labels = np.zeros((4, 40), int)
    ref_labels[:, 30:] = 1
    report = part_metrics(gen, gen_labels, refs, ref_labels, n_parts=3, normalization="unit_std")
    p0, p1, p2 = (report["parts"][f"part {i}"] for i in range(3))
    assert p1["n_generated_with_part"] == 2 and p1["generated_missing_part"] == 1
    assert p2["n_generated_with_part"] == 0 and np.isnan(p2["mmd"])
    from shd.eval.pointclouds import normalize

    g, r = normalize(gen, "unit_std"), normalize(refs, "unit_std")
    d1 = ref.chamfer_matrix([g[i][gen_labels[i] == 1] for i in range(2)], [c[30:] for c in r])
    assert (p1["mmd"], p1["cov"]) == pytest.approx(ref.mmd_cov(d1), rel=1e-5)
    assert 0 < p0["cov"] <= 1


def test_novelty_against_the_training_sets_own_spacing():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(5, 16, 3))
    gen = np.concatenate([train[:2] + rng.normal(size=(2, 16, 3)) * 0.01, rng.normal(size=(3, 16, 3))])
    gen[4] = np.nan
    out = novelty(gen, train, normalization="unit_std")
    from shd.eval.pointclouds import normalize

    g, t = normalize(gen[:4], "unit_std"), normalize(train, "unit_std")
    d_tt = ref.chamfer_matrix(t, t) + np.diag([np.inf] * 5)
    yardstick = np.median(d_tt.min(axis=1))
    nearest = ref.chamfer_matrix(g, t).min(axis=1)
    assert out["train_median_nn"] == pytest.approx(yardstick, rel=1e-5)
    np.testing.assert_allclose(out["nearest_train_cd"], nearest, rtol=1e-5)
    assert out["nearest_train_index"][:2] == [0, 1]  # the near-copies found their originals
    assert out["fraction_closer_than_train_median"] == pytest.approx((nearest < yardstick).mean())
    assert out["fraction_closer_than_train_median"] >= 0.5
    assert out["skipped_generated"] == 1 and out["normalization"] == "unit_std"


def test_training_spacing_is_computed_once_per_training_set_and_nearest_can_be_passed(monkeypatch):
    import shd.eval.metrics as metrics

    rng = np.random.default_rng(5)
    train, gen = rng.normal(size=(6, 16, 3)), rng.normal(size=(3, 16, 3))
    calls = []
    real = metrics.chamfer_matrix

    def counting(x, y=None, **kw):
        calls.append((len(x), None if y is None else len(y)))
        return real(x, y, **kw)

    monkeypatch.setattr(metrics, "chamfer_matrix", counting)
    first = novelty(gen, train, normalization="bbox")
    near = nearest_in(gen, train, normalization="bbox")
    calls.clear()
    again = novelty(gen, train, normalization="bbox", nearest=near)
    assert calls == []  # neither the training matrix nor the nearest search ran again
    assert again == first
    novelty(gen, train[:5], normalization="bbox")
    assert (5, None) in calls  # another training set: its own matrix


def test_oversampling_count():
    assert n_to_generate(606) == 667 and n_to_generate(10) == 11 and n_to_generate(0) == 0


def _distances(g: int, r: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euclidean distance matrices of g generated and r reference points in the plane (no ties)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(g, 2)), rng.normal(size=(r, 2)) + shift

    def d(a, b):
        return np.linalg.norm(a[:, None] - b[None], axis=-1)

    return d(x, x), d(x, y), d(y, y)


def _resampled_by_brute_force(d_gg, d_gr, d_rr, n_resamples, seed):
    """Each resample built as an explicit matrix, copies of one cloud never each other's neighbour."""
    g, r = d_gr.shape
    full = np.block([[d_gg, d_gr], [d_gr.T, d_rr]])
    out = []
    for gi, ri in bootstrap_draws(g, r, n_resamples, seed):
        idx = np.r_[gi, g + ri]
        m = full[np.ix_(idx, idx)].copy()
        m[idx[:, None] == idx[None, :]] = np.inf
        is_gen = idx < g
        out.append((is_gen[m.argmin(axis=1)] == is_gen).mean())
    return np.array(out)


def test_resampled_1nna_matches_explicit_resampled_matrices():
    d = _distances(15, 12, 0.5, seed=3)
    fast = one_nna_resampled(*d, n_resamples=40, seed=5)
    np.testing.assert_allclose(fast, _resampled_by_brute_force(*d, 40, 5), rtol=1e-12)


def test_resampled_1nna_finds_a_neighbour_beyond_the_nearest_columns(monkeypatch):
    # with only the 2 nearest columns searched first, many rows fall back to their full neighbour order
    import shd.eval.metrics as metrics

    monkeypatch.setattr(metrics, "_NEAR_COLUMNS", 2)
    d = _distances(15, 12, 0.5, seed=4)
    np.testing.assert_allclose(
        one_nna_resampled(*d, n_resamples=40, seed=1), _resampled_by_brute_force(*d, 40, 1), rtol=1e-12
    )


def test_1nna_interval_contains_the_estimate_shrinks_with_more_samples_and_is_seeded():
    small, large = _distances(20, 20, 0.7, seed=0), _distances(300, 300, 0.7, seed=0)
    for d in (small, large):
        low, high = one_nna_ci(*d, n_resamples=300, seed=0)
        assert low <= one_nna(*d)["1-nna"] <= high
    width = {n: np.diff(one_nna_ci(*d, n_resamples=300, seed=0))[0] for n, d in (("s", small), ("l", large))}
    assert width["l"] < 0.5 * width["s"]  # ~1/sqrt(n): 15x the samples, ~1/4 the width
    assert one_nna_ci(*large, seed=7) == one_nna_ci(*large, seed=7)
    seeded = one_nna_resampled(*small, n_resamples=50, seed=7)
    np.testing.assert_array_equal(seeded, one_nna_resampled(*small, n_resamples=50, seed=7))
    assert not np.array_equal(seeded, one_nna_resampled(*small, n_resamples=50, seed=8))


def test_separated_sets_have_a_point_interval_and_the_report_carries_it():
    low, high = one_nna_ci(*_distances(10, 10, 50.0, seed=1), n_resamples=100)
    assert low == high == 1.0  # every resample still separates them perfectly
    rng = np.random.default_rng(4)
    report = generation_metrics(
        rng.normal(size=(6, 16, 3)), rng.normal(size=(6, 16, 3)), normalization="bbox"
    )
    low, high = report["1-nna_ci95"]
    assert low <= report["1-nna"] <= high and report["nna_resamples"] == 1000
    assert np.isnan(generation_metrics(GEN, REF, normalization="bbox", nna_resamples=0)["1-nna_ci95"]).all()
