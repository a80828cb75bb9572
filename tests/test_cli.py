"""The facezoo command: help for every subcommand, predict on folders with good and bad files."""
import json

import numpy as np
import pytest
from PIL import Image

from facezoo import cli, zoo
from tests.helpers import package_tiny

SUBCOMMANDS = ["list", "info", "predict", "demo", "evaluate", "data", "data convert"]


@pytest.mark.parametrize("command", [""] + SUBCOMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(command.split() + ["--help"])
    assert e.value.code == 0
    assert "usage: facezoo" in capsys.readouterr().out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    package_tiny(str(root))
    return str(root)


@pytest.fixture
def registry(monkeypatch, exported):
    monkeypatch.setattr(zoo, "EXPORTED_DIR", exported)


def _faces(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(folder / f"f{i}.jpg")


def test_list_shows_headline(registry, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny_model" in out and "mean_accuracy = 0.5000" in out
    assert cli.main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "tiny_model"


def test_predict_folder_with_good_and_bad_files(registry, tmp_path, capsys):
    _faces(tmp_path / "faces" / "sub")
    (tmp_path / "faces" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "faces" / "notes.txt").write_text("ignored: not an image extension")
    out_json = tmp_path / "out.json"
    rc = cli.main(["predict", str(tmp_path / "faces"), "--model", "tiny_model", "--json", str(out_json)])
    assert rc == 0
    results = json.loads(out_json.read_text())
    assert len(results) == 4
    errors = [r for r in results if "error" in r]
    assert len(errors) == 1 and errors[0]["input"].endswith("broken.jpg")
    assert "broken.jpg" in capsys.readouterr().err


def test_predict_exit_codes(registry, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"")
    assert cli.main(["predict", str(tmp_path / "bad.jpg"), "--model", "tiny_model"]) == 1
    assert "empty" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "nothing_here"), "--model", "tiny_model"]) == 1
    _faces(tmp_path / "ok", 1)
    assert cli.main(["predict", str(tmp_path / "ok"), "--model", "tiny_modl"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'tiny_model'" in err and "Traceback" not in err
    assert cli.main(["predict", str(tmp_path / "ok"), "--model", "tiny_model", "--jsonl"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert json.loads(line)["model"] == "tiny_model"


def test_user_errors_print_one_line(registry, capsys):
    assert cli.main(["evaluate", "no_such_model", "--data-dir", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facezoo evaluate: error:") and "Traceback" not in err
