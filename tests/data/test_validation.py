import json

import numpy as np
import pytest

from shd.atomic import write_json
from shd.data.validation import ValidationConfig, ValidationFailed, validate
from shd.errors import InputError

from .builders import box_plane


def _corpus(tmp_path):
    """Good shapes plus one bad shape per failure class, written as a prepared folder."""
    good = [box_plane(f"good-{i}", wing_span=1.2 + 0.1 * i) for i in range(4)]
    bad = {sid: box_plane(sid) for sid in ("nan-coords", "holed", "not-normalized", "no-wing", "bad-label")}
    bad["nan-coords"].vertices = bad["nan-coords"].vertices.copy()
    bad["nan-coords"].vertices[0, 0] = np.nan
    bad["holed"].faces = bad["holed"].faces[1:]
    bad["holed"].face_labels = bad["holed"].face_labels[1:]
    bad["not-normalized"].vertices = bad["not-normalized"].vertices * 2.0
    bad["no-wing"].face_labels = np.zeros_like(bad["no-wing"].face_labels)
    bad["bad-label"].face_labels = bad["bad-label"].face_labels.copy()
    bad["bad-label"].face_labels[0] = 7
    entries = []
    for shape in good + list(bad.values()):
        shape.save(tmp_path / "prepared" / "shapes" / f"{shape.shape_id}.npz")
        entries.append(
            {
                "shape_id": shape.shape_id,
                "category": "airplane",
                "split": "train",
                "source": "test",
                "file": f"shapes/{shape.shape_id}.npz",
            }
        )
    (tmp_path / "prepared" / "shapes" / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    entries.append(
        {
            "shape_id": "corrupt",
            "category": "airplane",
            "split": "train",
            "source": "test",
            "file": "shapes/corrupt.npz",
        }
    )
    write_json(
        tmp_path / "prepared" / "index.json",
        {
            "categories": {"airplane": ["body", "wing", "tail", "engine"]},
            "shapes": entries,
            "errors": [
                {
                    "shape_id": "truncated-file",
                    "category": "airplane",
                    "path": "x/truncated.txt",
                    "reason": "line 12: expected 7 columns, got 3",
                }
            ],
        },
    )
    return [g.shape_id for g in good]


EXPECTED = {
    "nan-coords": "nan_count",
    "holed": "watertight",
    "not-normalized": "max_abs_coord",
    "no-wing": "missing_required_parts",
    "bad-label": "labels_valid",
    "corrupt": "prepare_ok",
    "truncated-file": "prepare_ok",
}


def test_every_bad_shape_dropped_with_its_reason(tmp_path):
    good = _corpus(tmp_path)
    report = validate(
        tmp_path / "prepared",
        tmp_path / "validated",
        tmp_path / "report.json",
        ValidationConfig(min_faces=20, min_pass_rate=0.3, docs=False),
    )
    dropped = {d["shape_id"]: d for d in report["dropped"]}
    assert set(dropped) == set(EXPECTED)
    for sid, column in EXPECTED.items():
        assert column in {r["column"] for r in dropped[sid]["reasons"]}, (sid, dropped[sid])
    assert "expected 7 columns" in dropped["truncated-file"]["prepare_error"]
    assert "not a readable prepared-shape npz" in dropped["corrupt"]["prepare_error"]
    kept = json.loads((tmp_path / "validated" / "shapes.json").read_text())["shapes"]
    assert [k["shape_id"] for k in kept] == good
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["n_kept"] == 4 and on_disk["n_total"] == 4 + len(EXPECTED)


def test_pass_rate_below_threshold_fails_after_writing_report(tmp_path):
    _corpus(tmp_path)
    with pytest.raises(ValidationFailed, match="passed validation"):
        validate(
            tmp_path / "prepared",
            tmp_path / "validated",
            tmp_path / "report.json",
            ValidationConfig(min_faces=20, min_pass_rate=0.9, docs=False),
        )
    assert json.loads((tmp_path / "report.json").read_text())["n_dropped"] == len(EXPECTED)


def test_data_docs_are_built(tmp_path):
    _corpus(tmp_path)
    validate(
        tmp_path / "prepared",
        tmp_path / "validated",
        tmp_path / "report.json",
        ValidationConfig(min_faces=20, min_pass_rate=0.3),
        docs_dir=tmp_path / "docs",
    )
    assert (tmp_path / "docs" / "index.html").exists()
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))


def test_manifest_table_is_the_same_on_two_workers(tmp_path):
    """Per-shape statistics on worker processes: same rows, same order, bad files still failed rows."""
    from shd.data.validation import _read_index, manifest_table

    _corpus(tmp_path)
    index = _read_index(tmp_path / "prepared")
    one = manifest_table(tmp_path / "prepared", index, ValidationConfig(workers=1))
    two = manifest_table(tmp_path / "prepared", index, ValidationConfig(workers=2))
    assert list(one["shape_id"]) == [e["shape_id"] for e in index["shapes"]] + ["truncated-file"]
    assert one.equals(two)
    assert not two.set_index("shape_id").loc["corrupt", "prepare_ok"]
    with pytest.raises(InputError, match="validate.workers"):
        ValidationConfig(workers=-1)
