"""benchmarks/predict_cli.py: fresh `facezoo predict` processes over copied CelebA crops, timed and checked."""
import json
import os

import pytest

import benchmarks.predict_cli as bench
from tests.helpers import data_dir


@pytest.mark.real_data
def test_times_each_configuration_and_reports_a_failing_one(tmp_path):
    root = data_dir("celeba")
    if root is None:
        pytest.skip("needs ../shared/data/celeba")
    out = tmp_path / "predict.json"
    rc = bench.main(["--crops", "3", "--rounds", "1", "--pause", "0", "--data-dir", os.path.dirname(root),
                     "--config=--no-face-check", "--config=--backend nope", "--out", str(out)])
    assert rc == 1  # one configuration failed, and says so
    report = json.loads(out.read_text())
    good, bad = report["results"]
    assert good["options"] == "--no-face-check" and len(good["values_s"]) == 1 and good["median_s"] > 0
    assert "nope" in bad["error"]
    assert report["crops"] == 3


def test_too_few_crops_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--crops", "3", "--data-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "found 0 CelebA crops" in capsys.readouterr().err
