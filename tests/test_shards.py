import numpy as np
import pytest

from shd.atomic import atomic_path, write_json
from shd.errors import InputError
from shd.shards import fingerprint, read_shard, read_shard_meta, shard_matches, write_shard


def test_shard_round_trip_and_resume_check(tmp_path):
    path = tmp_path / "s.safetensors"
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -1], dtype=np.int8)}
    fp = fingerprint({"x": 1}, ["s1", "s2"])
    write_shard(path, tensors, {"fingerprint": fp, "shape_ids": ["s1", "s2"]})
    got, meta = read_shard(path)
    np.testing.assert_array_equal(got["a"], tensors["a"])
    assert got["b"].dtype == np.int8 and meta["shape_ids"] == ["s1", "s2"]
    assert shard_matches(path, fp, ["s1", "s2"])
    assert not shard_matches(path, fp, ["s1"])
    assert not shard_matches(path, fingerprint({"x": 2}, ["s1", "s2"]), ["s1", "s2"])
    assert not shard_matches(tmp_path / "missing.safetensors", fp, ["s1", "s2"])


def test_fingerprint_ignores_key_order():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_corrupted_shard_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    with pytest.raises(InputError, match="bad.safetensors: not a readable shd safetensors shard"):
        read_shard_meta(path)
    assert not shard_matches(path, "x", [])
    with pytest.raises(InputError, match="missing"):
        read_shard_meta(tmp_path / "nope.safetensors")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    assert path.read_text().strip().replace(" ", "").replace("\n", "") == '{"v":1}'
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_json_documents_name_the_file_and_the_problem(tmp_path):
    from shd.atomic import read_json_document

    path = tmp_path / "manifest.json"
    with pytest.raises(InputError, match="manifest.json: missing; run the stage"):
        read_json_document(path, "run the stage")
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        read_json_document(path, "x")
    write_json(path, {"format": "a/1"})
    with pytest.raises(InputError, match="format is 'a/1', expected 'b/1'"):
        read_json_document(path, "x", "b/1")
    assert read_json_document(path, "x", "a/1") == {"format": "a/1"}
