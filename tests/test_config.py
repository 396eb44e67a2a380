from dataclasses import dataclass

import pytest

from shd.config import load_params, section_config
from shd.data.prepare import PrepareConfig
from shd.data.sampling import SamplingConfig
from shd.data.validation import ValidationConfig
from shd.errors import InputError


@dataclass
class Demo:
    a: int = 1
    span: tuple[float, float] = (0.0, 1.0)


def test_repository_params_build_every_stage_config():
    params = load_params("params.yaml")
    section_config(params, "prepare", PrepareConfig)
    section_config(params, "validate", ValidationConfig)
    section_config(params, "sample", SamplingConfig)


def test_lists_become_tuples_and_missing_section_uses_defaults():
    assert section_config({"demo": {"span": [0.2, 0.3]}}, "demo", Demo) == Demo(span=(0.2, 0.3))
    assert section_config({}, "demo", Demo) == Demo()


def test_unknown_key_names_the_field_and_the_valid_keys():
    with pytest.raises(InputError, match=r"params.yaml:demo.b: unknown key; expected some of: a, span"):
        section_config({"demo": {"b": 1}}, "demo", Demo)


def test_bad_values_are_named():
    with pytest.raises(InputError, match="prepare.source"):
        section_config({"prepare": {"source": "ftp"}}, "prepare", PrepareConfig)
    with pytest.raises(InputError, match="split_ratios"):
        section_config({"prepare": {"split_ratios": {"train": 1.0}}}, "prepare", PrepareConfig)
    with pytest.raises(InputError, match="counts.airplane"):
        section_config({"prepare": {"counts": {"airplane": -3}}}, "prepare", PrepareConfig)
    with pytest.raises(InputError, match="procedural source makes only"):
        section_config({"prepare": {"counts": {"table": 3}}}, "prepare", PrepareConfig)


def test_missing_or_broken_params_file(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("prepare: [unclosed")
    with pytest.raises(InputError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_gpu_profile_builds_every_stage_config():
    from shd.diffusion.config import DiffusionConfig
    from shd.eval.evaluate import EvaluateConfig
    from shd.fields.config import OverfitConfig
    from shd.report import ReportConfig

    for path in ("params.yaml", "params-profiles/shapenet-gpu.yaml"):
        params = load_params(path)
        for section, cls in (
            ("prepare", PrepareConfig),
            ("validate", ValidationConfig),
            ("sample", SamplingConfig),
            ("evaluate", EvaluateConfig),
            ("report", ReportConfig),
        ):
            section_config(params, section, cls, where=path)
        overfit = {k: v for k, v in params["overfit"].items() if k not in ("accelerator", "devices")}
        OverfitConfig.from_dict(overfit)
        DiffusionConfig.from_dict(params["diffusion"])
