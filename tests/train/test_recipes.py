"""Each training recipe end to end on a tiny synthetic copy of its data layout (48 px, 1 epoch, width 0.125)."""
import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--epochs", "1", "--batch-size", "8", "--input-size", "48", "--width", "0.125", "--threads", "2"]
ADIENCE_HEADER = ("user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\t"
                  "fiducial_yaw_angle\tfiducial_score")
AGES = ("(0, 2)", "(4, 6)", "(8, 12)", "(15, 20)", "(25, 32)", "(38, 43)", "(48, 53)", "(60, 100)")


def run_recipe(name, *args):
    result = subprocess.run([sys.executable, os.path.join(REPO, "recipes", name), *args], cwd=REPO,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("recipe", ["train_age_adience.py", "train_gender_csv.py"])
def test_recipe_help(recipe):
    out = run_recipe(recipe, "--help")
    for option in ("--data-dir", "--epochs", "--batch-size", "--input-size", "--width", "--out"):
        assert option in out


def test_adience_recipe_cross_validates(tmp_path, write_jpeg):
    data = tmp_path / "adience"
    for k in range(5):
        rows = []
        for i in range(6):
            user, face_id = f"user{k}@N0{k}", i + 1
            write_jpeg(data / "faces" / user / f"coarse_tilt_aligned_face.{face_id}.img{i}.jpg", size=(48, 48),
                       seed=10 * k + i)
            rows.append(f"{user}\timg{i}.jpg\t{face_id}\t{AGES[(k + i) % 8]}\t{'mf'[i % 2]}\t0\t0\t48\t48\t0\t0\t0")
        (data / f"fold_{k}_data.txt").write_text("\n".join([ADIENCE_HEADER] + rows))
    out = tmp_path / "run"
    stdout = run_recipe("train_age_adience.py", "--data-dir", str(data), "--out", str(out), "--folds", "0,1", *TINY)
    summary = json.loads((out / "crossval.json").read_text())
    assert list(summary["folds"]) == ["fold_0", "fold_1"]
    for metric in ("age_group/accuracy", "age_group/mae", "age_group/one_off_accuracy", "gender/accuracy"):
        assert summary["metrics"][metric]["n"] == 2
    assert "| gender/accuracy |" in (out / "crossval.md").read_text()
    # Each fold trained on the four others (24 images, 3 steps of 8) and was validated on its own 6.
    for fold in ("fold_0", "fold_1"):
        with open(out / fold / "history.csv") as f:
            history = list(csv.DictReader(f))
        assert [(r["epoch"], r["step"]) for r in history] == [("1", "3")]
        assert json.loads((out / fold / "eval.json").read_text())["heads"]["adience__age_group"]["n"] == 6
    assert "faces in folds" in stdout


def test_gender_csv_recipe_ensembles_and_writes_a_submission(tmp_path, write_jpeg):
    data = tmp_path / "gender"
    train_ids = [f"t{i}" for i in range(30)]
    test_ids = [f"q{i}" for i in range(6)]
    for i, image_id in enumerate(train_ids):
        write_jpeg(data / "train" / f"{image_id}.jpg", size=(48, 48), seed=i)
    for i, image_id in enumerate(test_ids):
        write_jpeg(data / "test" / f"{image_id}.jpg", size=(48, 48), seed=100 + i)
    (data / "train.csv").write_text("id,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(train_ids)))
    (data / "test.csv").write_text("id\n" + "".join(f"{t}\n" for t in test_ids))
    template = list(reversed(test_ids))  # the submission follows the template's order
    (data / "sampleSubmit.csv").write_text("id,label\n" + "".join(f"{t},0\n" for t in template))
    out = tmp_path / "run"
    run_recipe("train_gender_csv.py", "--data-dir", str(data), "--out", str(out), "--ensemble", "2", *TINY)
    with open(out / "submission.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "label"]
    assert [r[0] for r in rows[1:]] == template
    assert {r[1] for r in rows[1:]} <= {"0", "1"}
    report = json.loads((out / "ensemble.json").read_text())
    assert sorted(report["members"]) == ["member_0", "member_1"]
    assert sorted(report["methods"]) == ["feature_concat", "vote", "weighted_vote"]
    assert report["submission_method"] == "weighted_vote"
    assert sum(report["weights"]) == pytest.approx(1.0)
    assert (out / "member_1" / "history.csv").exists()
