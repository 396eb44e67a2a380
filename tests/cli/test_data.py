import json
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from shd.cli import app
from shd.data.categories import CATEGORIES

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "data" in result.output
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("import-shapenetpart", "generate", "show"):
        assert command in result.output


def test_generate_then_show(tmp_path):
    args = ["data", "generate", "--airplane", "2", "--chair", "1", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index["shapes"]) == 3
    shown = runner.invoke(app, ["data", "show", str(tmp_path / index["shapes"][0]["file"])])
    assert shown.exit_code == 0
    info = json.loads(shown.output)
    assert info["watertight"] is True and info["category"] == "airplane"


def test_missing_root_is_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["data", "import-shapenetpart", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "nowhere: does not exist" in result.output
    assert "Traceback" not in result.output


def test_unreadable_shape_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"nope")
    result = runner.invoke(app, ["data", "show", str(bad)])
    assert result.exit_code == 2 and "not a readable prepared-shape npz" in result.output


V0 = Path(__file__).resolve().parents[1] / "fixtures" / "shapenetpart" / "v0"


def test_import_all_categories_reports_per_category_counts(tmp_path):
    root = tmp_path / "v0"  # three small categories keep it fast; 'all' means every synset folder present
    picked = ("guitar", "knife", "rocket")
    for name in picked:
        shutil.copytree(V0 / CATEGORIES[name].synset, root / CATEGORIES[name].synset)
    args = ["data", "import-shapenetpart", str(root), "--category", "all", "--grid-resolution", "24"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name in picked:
        assert re.search(rf"^\s+{name}\s+1 shapes\s+0 errors$", result.output, re.M), (name, result.output)
    assert "imported 3 shapes of 3 categories" in result.output
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert sorted(s["category"] for s in index["shapes"]) == list(picked)


def test_unknown_category_in_a_list_is_one_line_exit_2(tmp_path):
    args = ["data", "import-shapenetpart", str(V0), "--category", "knife,spaceship", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "category 'spaceship': unknown" in result.output, result.output
