import json

from typer.testing import CliRunner

from shd.cli import app

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
