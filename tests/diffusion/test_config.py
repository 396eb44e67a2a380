import pytest

from shd.diffusion.config import DiffusionConfig
from shd.errors import InputError


@pytest.mark.parametrize("key", ["data_on_device", "log_model"])
def test_switches_take_only_true_or_false(key):
    assert getattr(DiffusionConfig.from_dict({"train": {key: False}}).train, key) is False
    with pytest.raises(InputError, match=rf"diffusion.train.{key}.*expected true or false, got 'no'"):
        DiffusionConfig.from_dict({"train": {key: "no"}})
