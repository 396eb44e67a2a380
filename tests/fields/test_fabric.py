import pytest

from shd.fields.fit import fit_with_fabric
from shd.fields.weight_set import WeightSet


def test_fabric_single_process(sample_dir, tmp_path, tiny):
    summary = fit_with_fabric(sample_dir, tmp_path, tiny(), accelerator="cpu", devices=1)
    assert summary["world"] == 1 and summary["n_shapes"] == 5
    assert len(WeightSet.open(tmp_path).ids(status=None)) == 5


@pytest.mark.slow
def test_fabric_two_processes_merge_into_one_weight_set(sample_dir, tmp_path, tiny):
    cfg = tiny()
    summary = fit_with_fabric(
        sample_dir, tmp_path / "two", cfg, accelerator="cpu", devices=2, strategy="ddp_spawn"
    )
    assert summary["world"] == 2 and summary["n_shapes"] == 5 and summary["fitted_shards"] == 2
    fit_with_fabric(sample_dir, tmp_path / "one", cfg, accelerator="cpu", devices=1)
    two, one = WeightSet.open(tmp_path / "two"), WeightSet.open(tmp_path / "one")
    ids = one.ids(status=None)
    assert two.ids(status=None) == ids
    assert (two.load_flat(ids) - one.load_flat(ids)).abs().max() < 1e-5
