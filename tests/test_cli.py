"""The facezoo command: help for every subcommand, predict on folders with good and bad files."""
import json

import numpy as np
import pytest
from PIL import Image

from facezoo import cli, zoo
from tests.helpers import package_tiny

SUBCOMMANDS = ["list", "info", "analyze", "predict", "demo", "verify", "evaluate", "export", "bench", "generate",
               "upscale", "data", "data convert", "facedb", "facedb enroll", "facedb remove", "facedb list",
               "facedb search"]


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
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", exported)


def _faces(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 256, (48, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"f{i}.jpg")


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
    assert all("face_score" in r for r in results if "error" not in r)
    assert cli.main(["predict", str(tmp_path / "faces" / "sub"), "--model", "tiny_model", "--json", str(out_json),
                     "--no-face-check"]) == 0
    unchecked = json.loads(out_json.read_text())
    assert len(unchecked) == 3 and not any("face_score" in r for r in unchecked)


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


def test_info_is_a_summary_and_json_on_request(registry, capsys):
    assert cli.main(["info", "tiny_model"]) == 0
    out = capsys.readouterr().out
    assert "tiny_model  (attributes)" in out and "input       40x32 rgb" in out and "licence     test only" in out
    assert "model.keras" in out and not out.lstrip().startswith("{") and "flip test" not in out
    assert cli.main(["info", "tiny_model", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "attributes"


def test_list_shows_the_licence_and_survives_a_broken_folder(exported, tmp_path, monkeypatch, capsys):
    import shutil
    root = tmp_path / "exported"
    shutil.copytree(exported, root)
    (root / "broken").mkdir()
    (root / "broken" / "card.json").write_text("{oops")
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", str(root))
    assert cli.main(["list"]) == 0
    captured = capsys.readouterr()
    assert "tiny_model" in captured.out and "test only" in captured.out
    assert "broken: broken model folder" in captured.err and "card.json" in captured.err


def test_outputs_and_flags_are_checked_before_any_work(registry, tmp_path, capsys):
    _faces(tmp_path / "ok", 1)
    assert cli.main(["predict", str(tmp_path / "ok"), "--model", "tiny_model", "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "ok"), "--json", str(tmp_path / "no" / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["predict", str(tmp_path / "ok"), "--batch-size", "0"])
    assert e.value.code == 2 and "positive integer" in capsys.readouterr().err


def test_summary_marks_abstaining_heads_unsure_instead_of_hiding_them():
    result = {"input": "x.jpg", "attributes": {
        "age": {"value": 45.04, "confidence": 0.15, "abstain": True},
        "gender": {"label": "male", "probabilities": {}, "confidence": 0.9, "abstain": False},
        "Smiling": {"probability": 0.8, "present": True, "confidence": 0.3, "abstain": True},
        "Bald": {"probability": 0.1, "present": False, "confidence": 0.9, "abstain": False}}}
    assert cli.summary_line(result) == "x.jpg: age=45.0 (unsure), gender=male, Smiling (unsure)"


@pytest.mark.slow
def test_tensorflow_start_up_lines_are_hidden_unless_verbose(tmp_path):
    import subprocess
    import sys
    image = zoo.sample_image()
    quiet = subprocess.run([sys.executable, "-m", "facezoo.cli", "predict", image, "--model", "dmtl_utkface"],
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "gender=" in quiet.stdout
    assert quiet.stderr.strip() == "", quiet.stderr
