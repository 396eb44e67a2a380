"""Report inputs and panels without a browser: versions, application folders, bad inputs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import yaml

from shd.errors import InputError
from shd.report import from_project
from shd.report.apps import app_sections
from shd.report.build import MeshStore
from shd.report.inputs import versions

from .boxes import build_box_report, write_app_panel


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    return build_box_report(tmp_path_factory.mktemp("boxes"))


def test_versions_name_upstream_data_model_and_params(tiny_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(tiny_project / "models", root / "models")
    shutil.copy(tiny_project / "params.yaml", root / "params.yaml")
    lock = {
        "schema": "2.0",
        "stages": {
            "overfit": {"outs": [{"path": "data/weights", "md5": "abc123.dir", "size": 1}]},
            "evaluate": {"outs": [{"path": "data/eval", "md5": "stale.dir", "size": 1}]},
        },
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    found = versions(root)
    assert found["data (dvc.lock)"] == {"data/weights": "md5 abc123 (stage overfit)"}  # not the stale one
    model = found["model (models/diffusion/model)"]
    config = json.loads((tiny_project / "models/diffusion/model/config.json").read_text())
    assert model["training data fingerprint"] == config["data_fingerprint"]
    assert len(model["model.safetensors sha256"]) == 12
    assert found["params (params.yaml)"]["report.resolution"] == "40"


def test_application_folders_become_panels_within_budget(boxes, tmp_path):
    from shd.fields.weight_set import WeightSet

    apps = tmp_path / "apps"
    write_app_panel(apps / "interpolate", WeightSet.open(boxes / "data/weights"))
    (apps / "broken").mkdir()
    (apps / "broken/summary.json").write_text("{not json")
    store = MeshStore(None)
    sections = app_sections(apps, store, max_faces=10**6, max_image_bytes=10**7)
    assert len(sections) == 2 and "is not valid JSON" in sections[0] and "Application: hybrid" in sections[1]
    assert store.n_viewers == 1 and "data:image/png;base64," in sections[1]
    tight = MeshStore(None)
    sections = app_sections(apps, tight, max_faces=10, max_image_bytes=10)
    assert tight.n_viewers == 0 and "over the 10-face budget" in sections[1]
    assert "over the image budget" in sections[1]
    assert app_sections(tmp_path / "none", MeshStore(None), 10, 10) == []


def test_missing_or_mismatched_eval_files_are_named(boxes, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(boxes, root)
    (root / "data/weights").rename(root / "data/elsewhere")
    kept = json.loads((root / "data/eval/samples.json").read_text())
    kept["weights"] = "data/weights"
    (root / "data/eval/samples.json").write_text(json.dumps(kept))
    with pytest.raises(InputError, match="evaluated weight set is not here"):
        from_project(root)
    kept["generated"] = kept["generated"][:2]
    (root / "data/eval/samples.json").write_text(json.dumps(kept))
    with pytest.raises(InputError, match="lists 2 samples"):
        from_project(root)
    (root / "data/eval/generated.safetensors").unlink()
    with pytest.raises(InputError, match="generated.safetensors: missing"):
        from_project(root)


def test_display_meshes_keep_to_the_face_budget(boxes):
    from shd.eval.meshing import REFERENCE_LEVEL
    from shd.fields.weight_set import WeightSet
    from shd.report.build import MIN_RESOLUTION, ReportConfig, _mesh

    weights = WeightSet.open(boxes / "data/weights")
    flat = weights.load_flat(weights.ids(split="train")[:2])
    free = _mesh(flat, weights, ReportConfig(resolution=40, device="cpu"), REFERENCE_LEVEL)
    assert all(m.ok and len(m.faces) > 800 for m in free)
    capped = _mesh(flat, weights, ReportConfig(resolution=40, max_faces=800, device="cpu"), REFERENCE_LEVEL)
    for m in capped:
        assert m.ok and (len(m.faces) <= 800 or m.meta["resolution"] == MIN_RESOLUTION)
        assert m.meta["resolution"] < 40


def test_the_quality_table_panel_is_on_the_page_when_the_table_exists(boxes, tmp_path):
    from shd.report import ReportConfig
    from shd.report.build import build_page

    from .test_quality import _table

    cfg = ReportConfig(max_shapes=0, worst_covered=0, apps=str(tmp_path / "none"))
    assert 'id="quality"' not in build_page(from_project(boxes), cfg)[0]
    table = tmp_path / "quality_table.json"
    table.write_text(json.dumps(_table()))
    text = build_page(from_project(boxes), replace(cfg, quality_table=str(table)))[0]
    assert 'id="quality"' in text and 'id="novelty-scatter"' in text
