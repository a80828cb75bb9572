"""``facezoo data convert`` through its argparse parser."""
import argparse
import csv
import json

import pytest

from facezoo.data import cli


def _run(*argv):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "convert", *argv])
    return args.func(args)


def test_convert_with_val_split_and_resize(celeba_layout, tmp_path, capsys):
    root, _, _ = celeba_layout(n=12, partitions=(0, 0, 0, 2))
    assert _run("celeba", "--root", str(root), "--out", str(tmp_path / "out"), "--shards", "2",
                "--image-size", "20x16", "--val-percent", "50", "--no-progress") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["image_size"] == [20, 16]
    assert set(manifest["splits"]) == {"train", "val", "test"}
    assert manifest["splits"]["test"]["count"] == 3
    assert "wrote" in capsys.readouterr().out


def test_user_errors_are_clear(celeba_layout, utk_layout, tmp_path):
    root, _, _ = celeba_layout(n=6, landmarks=False)
    with pytest.raises(ValueError, match="--align needs --image-size"):
        _run("celeba", "--root", str(root), "--out", str(tmp_path / "o"), "--align")
    with pytest.raises(ValueError, match="this data set .* has no landmarks"):
        _run("celeba", "--root", str(root), "--out", str(tmp_path / "o"), "--align", "--image-size", "16")
    with pytest.raises(ValueError, match="--val-percent must be between 1 and 99"):
        _run("celeba", "--root", str(root), "--out", str(tmp_path / "o"), "--val-percent", "100")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        _run("utkface", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    with pytest.raises(SystemExit):
        _run("celeba", "--root", str(root), "--out", str(tmp_path / "o"), "--image-size", "3x")
    assert cli.parse_image_size("112") == (112, 112) and cli.parse_image_size("218x178") == (218, 178)


def test_every_problem_and_reject_is_written_down(utk_layout, tmp_path, capsys):
    good = [f"{20 + i}_{i % 2}_{i % 4}_2017010{i}.jpg.chip.jpg" for i in range(4)]
    bad = [f"bad{i}.jpg" for i in range(7)]
    root = utk_layout(good + bad)
    (root / "UTKFace" / good[1]).write_bytes(b"not an image")
    assert _run("utkface", "--root", str(root), "--out", str(tmp_path / "out"), "--shards", "1",
                "--max-reject-fraction", "0.5", "--no-progress") == 0
    err = capsys.readouterr().err
    with open(tmp_path / "out" / "problems.csv") as f:
        problems = list(csv.DictReader(f))
    assert sorted(p["source"] for p in problems) == bad  # all seven, though the terminal shows five
    assert f"7 item(s) skipped by the utkface reader, all listed in {tmp_path / 'out' / 'problems.csv'}" in err
    assert "... and 2 more" in err
    assert f"rejected {root / 'UTKFace' / good[1]}: not an image" in err
    with open(tmp_path / "out" / "rejects.csv") as f:
        assert [r["source"] for r in csv.DictReader(f)] == [f"UTKFace/{good[1]}"]


def test_val_percent_follows_the_recipes_split_rule(celeba_layout, tmp_path):
    """An official val split is re-split with train by identity, as the recipes do; test stays aside."""
    from facezoo.data import READERS
    from facezoo.data.splits import split_records
    root, _, _ = celeba_layout(n=12, partitions=(0, 1, 0, 2))
    assert _run("celeba", "--root", str(root), "--out", str(tmp_path / "out"), "--val-percent", "50",
                "--no-progress") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    expected = split_records(READERS["celeba"](str(root)).records(), 50)
    for split in ("train", "val", "test"):
        assert manifest["splits"].get(split, {"count": 0})["count"] == sum(r.split == split for r in expected)
    assert manifest["splits"]["test"]["count"] == 3
