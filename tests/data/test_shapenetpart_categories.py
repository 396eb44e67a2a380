"""All 16 ShapeNetPart categories (the real `v0` sample, one shape each, tests/fixtures/shapenetpart/v0):
every shape imports with its own category's parts, validates, samples, and fits with one expert per part
of its category (2 to 6 experts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shd.data.categories import CATEGORIES
from shd.data.prepare import PrepareConfig, prepare
from shd.data.sampling import SamplingConfig, sample_shapes
from shd.data.shape import PreparedShape
from shd.data.validation import ValidationConfig, validate
from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.fit import fit_per_category
from shd.fields.weight_set import WeightSet

V0 = Path(__file__).resolve().parents[1] / "fixtures" / "shapenetpart" / "v0"
RES = 32  # coarse surfaces keep the 16 imports at a few seconds


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepared")
    cfg = PrepareConfig(
        source="shapenetpart",
        counts={name: 0 for name in CATEGORIES},
        shapenetpart_root=str(V0),
        grid_resolution=RES,
    )
    return out, prepare(cfg, out)


def test_every_v0_category_imports_with_its_own_parts(prepared: tuple[Path, dict]) -> None:
    out, summary = prepared
    assert summary["n_errors"] == 0 and summary["n_shapes"] == 16
    assert summary["by_category"] == {name: {"shapes": 1, "errors": 0} for name in CATEGORIES}
    index = json.loads((out / "index.json").read_text())
    assert index["categories"] == {name: list(c.parts) for name, c in CATEGORIES.items()}
    for entry in index["shapes"]:
        shape = PreparedShape.load(out / entry["file"])
        n_parts = CATEGORIES[shape.category].n_parts
        assert shape.label_values.max() < n_parts and shape.face_labels.max() < n_parts
        # the dominant labelled part also labels faces: labels were read in the category's own ids
        assert np.bincount(shape.face_labels, minlength=n_parts).argmax() in set(shape.label_values.tolist())


def test_sixteen_categories_validate_sample_and_fit_per_category(
    prepared: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = prepared
    report = validate(
        out, tmp_path / "validated", tmp_path / "validation.json", ValidationConfig(docs=False, workers=1)
    )
    kept = json.loads((tmp_path / "validated" / "shapes.json").read_text())
    assert report["n_kept"] == 16, report
    sampled = sample_shapes(
        [out / s["file"] for s in kept["shapes"]],
        tmp_path / "samples",
        SamplingConfig(
            n_near=600,
            n_uniform=600,
            n_eval_near=200,
            n_eval_uniform=200,
            n_surface=64,
            shard_size=8,
            device="cpu",
            workers=1,
        ),
        kept["categories"],
    )
    assert sampled["n_shapes"] == 16
    cfg = OverfitConfig(
        field=FieldConfig(n_experts=4, hidden=(16, 16), n_freqs=2),
        points_per_step=128,
        max_steps=30,
        warmup_steps=5,
        check_every=10,
        init="seed",
        min_iou=0.0,
        min_part_iou=0.0,
        shard_size=4,
        max_batch=64,
    )
    fits = fit_per_category(tmp_path / "samples", tmp_path / "weights", cfg)
    assert set(fits) == set(CATEGORIES)
    for name, summary in fits.items():
        assert summary["n_shapes"] == 1 and summary["n_failed"] == 0, (name, summary)
        ws = WeightSet.open(tmp_path / "weights" / name)
        assert ws.field.n_experts == CATEGORIES[name].n_parts
        manifest = json.loads((tmp_path / "weights" / name / "manifest.json").read_text())
        assert len(manifest["shapes"][0]["part_iou"]) == CATEGORIES[name].n_parts
