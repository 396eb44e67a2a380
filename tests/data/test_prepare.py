"""`prepare` on several workers writes the same shapes and index as on one."""

import json

import numpy as np
import pytest

from shd.data.prepare import PrepareConfig, prepare
from shd.data.shape import PreparedShape
from shd.errors import InputError


def test_parallel_prepare_matches_one_worker(tmp_path):
    counts = {"airplane": 3, "chair": 2}
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        summary = prepare(PrepareConfig(counts=counts, workers=workers), out)
        by_category = {"airplane": {"shapes": 3, "errors": 0}, "chair": {"shapes": 2, "errors": 0}}
        assert summary == {"n_shapes": 5, "n_errors": 0, "by_category": by_category}
        outs[workers] = out
    index = [json.loads((o / "index.json").read_text()) for o in outs.values()]
    assert index[0] == index[1] and "workers" not in index[0]["config"]
    assert [s["shape_id"] for s in index[0]["shapes"]][:3] == [f"proc-airplane-{i:05d}" for i in range(3)]
    for rec in index[0]["shapes"]:
        a, b = (PreparedShape.load(o / rec["file"]) for o in outs.values())
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.face_labels, b.face_labels)
        assert a.split == b.split == rec["split"]


def test_workers_option_is_checked():
    with pytest.raises(InputError, match="prepare.workers"):
        PrepareConfig(workers=-2)
