"""End to end on a tiny synthetic CelebA: recipe -> resumable run -> ship -> load -> predict -> evaluate."""
import json
import os
import runpy

import pytest

from tests.helpers import run_recipe

from facezoo import zoo
from facezoo.files import sha256_of
from facezoo.models.weights import load_keras

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_train_ship_load_predict_evaluate(celeba_layout, tmp_path):
    root, _names, _values = celeba_layout(n=40)
    run = tmp_path / "run"
    common = ["--dataset", "celeba", "--data-dir", str(root), "--input-size", "40x32", "--width", "0.125",
              "--batch-size", "8", "--max-steps-per-epoch", "2", "--val-percent", "30", "--out", str(run)]
    assert run_recipe("train_dmtl.py", common + ["--epochs", "1"]) == 0
    history = json.loads((run / "state.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1]
    # Re-running with more epochs resumes: epoch 1 is not trained again.
    assert run_recipe("train_dmtl.py", common + ["--epochs", "2"]) == 0
    history = json.loads((run / "state.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["step"] == 4
    for f in ("best.keras", "last.keras", "eval.json", "curves.png", "history.csv", "run.json"):
        assert (run / f).exists(), f

    exported = tmp_path / "exported"
    assert run_recipe("ship_dmtl.py", ["--run", str(run), "--name", "dmtl_tiny", "--dataset", "celeba",
                                        "--data-dir", str(root), "--exported", str(exported)]) == 0
    card = zoo.ModelCard.from_json(exported / "dmtl_tiny" / "card.json")
    assert card.sha256 == sha256_of(exported / "dmtl_tiny" / "model.keras")
    assert card.evaluate_command.startswith("facezoo evaluate dmtl_tiny --data-dir")
    summary = card.metrics["val"]["celeba"]
    assert 0.0 <= summary["mean_accuracy"] <= 1.0

    from facezoo.evaluation.report import evaluate
    report = evaluate("dmtl_tiny", str(root), directory=str(exported / "dmtl_tiny"), latency=False)
    assert report["summary"]["mean_accuracy"] == pytest.approx(summary["mean_accuracy"])
    model = zoo.load("dmtl_tiny", directory=str(exported / "dmtl_tiny"))
    result = model.predict(zoo.sample_image())
    assert len(result["attributes"]) == 40

    # A run continued from the shipped model: its card starts with every command of the shipped one.
    more = tmp_path / "more"
    assert run_recipe("train_dmtl.py", common[:-1] + [str(more), "--epochs", "1", "--init",
                                                      str(exported / "dmtl_tiny" / "model.keras")]) == 0
    assert run_recipe("ship_dmtl.py", ["--run", str(more), "--name", "dmtl_tiny2", "--dataset", "celeba",
                                        "--data-dir", str(root), "--exported", str(exported)]) == 0
    again = zoo.ModelCard.from_json(exported / "dmtl_tiny2" / "card.json")
    first, second = card.train_command, again.train_command
    assert second.startswith(first + " && python recipes/train_dmtl.py --dataset celeba ")
    last = second.split(" && ")[-1]
    assert "--init exported/dmtl_tiny/model.keras" in last and last.endswith("--out runs/more")
    assert len(again.training_data["stages"]) == 2 and again.license == card.license
    assert "continued from the previously shipped dmtl_tiny" in again.description


@pytest.mark.slow
def test_joint_run_warm_started_ships_one_branch_with_the_whole_chain(celeba_layout, utk_layout, tmp_path):
    celeba_root, _names, _values = celeba_layout(n=24)
    utk_root = utk_layout([f"{20 + i}_{i % 2}_{i % 5}_2017010{i % 10}.jpg.chip.jpg" for i in range(24)])
    small = ["--input-size", "40x32", "--width", "0.125", "--batch-size", "8", "--max-steps-per-epoch", "2",
             "--val-percent", "30", "--epochs", "1"]
    first, joint = tmp_path / "first", tmp_path / "joint"
    assert run_recipe("train_dmtl.py", small + ["--dataset", "celeba", "--data-dir", str(celeba_root),
                                                 "--out", str(first)]) == 0
    assert run_recipe("train_dmtl.py", small + [
        "--dataset", "celeba+utkface", "--data-dir", f"celeba={celeba_root}", "--data-dir", f"utkface={utk_root}",
        "--init", str(first / "best.keras"), "--out", str(joint)]) == 0

    exported = tmp_path / "exported"
    assert run_recipe("ship_dmtl.py", ["--run", str(joint), "--name", "tiny_utk", "--dataset", "utkface",
                                        "--data-dir", str(utk_root), "--exported", str(exported)]) == 0
    card = zoo.ModelCard.from_json(exported / "tiny_utk" / "card.json")
    stages = card.train_command.split(" && ")
    assert stages[0].startswith("python recipes/train_dmtl.py --dataset celeba ")
    assert "--dataset celeba+utkface" in stages[1] and "--init runs/first/best.keras" in stages[1]
    assert stages[2].startswith("python recipes/ship_dmtl.py --run runs/joint --name tiny_utk --dataset utkface")
    assert "CelebA" in card.license and "UTKFace" in card.license
    assert set(card.training_data["trained_on"]) == {"celeba", "utkface"}
    assert set(card.metrics["val"]["utkface"]) >= {"age_mae", "gender_accuracy", "race_accuracy"}

    # The shipped branch computes exactly what the joint model computes for UTKFace.
    import numpy as np
    shipped = load_keras(str(exported / "tiny_utk" / "model.keras"))
    whole = load_keras(str(joint / "best.keras"))
    x = np.random.default_rng(0).uniform(0, 255, (2, 40, 32, 3)).astype("float32")
    a, b = shipped(x, training=False), whole(x, training=False)
    assert set(a) == {k for k in b if k.startswith("utkface__")}
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5)

    # With --bn-recalibrate the shipped branch keeps every trained weight but takes UTKFace's own
    # BatchNorm statistics, and the card says so and records the flag in the command.
    assert run_recipe("ship_dmtl.py", ["--run", str(joint), "--name", "tiny_bn", "--dataset", "utkface",
                                        "--data-dir", str(utk_root), "--exported", str(exported),
                                        "--bn-recalibrate"]) == 0
    card = zoo.ModelCard.from_json(exported / "tiny_bn" / "card.json")
    assert card.train_command.endswith("--dataset utkface --bn-recalibrate") and "re-estimated" in card.notes
    recal = load_keras(str(exported / "tiny_bn" / "model.keras"))
    stats = {w.path: w.numpy() for w in recal.weights}
    changed = [w.path for w in whole.weights if w.path in stats and not np.allclose(stats[w.path], w.numpy())]
    assert changed and all(p.endswith(("moving_mean", "moving_variance")) for p in changed)


def test_head_weights_override_the_recipe_and_reach_the_card_command():
    from facezoo.train.runner import build_config
    config = build_config(["celeba", "utkface"], input_size=(40, 32), head_weights={"age": 16})
    weights = {h.attribute.name: h.weight for d in config.datasets for h in d.heads}
    assert weights["age"] == 16.0 and weights["gender"] == 1.0 and weights["Smiling"] == 1.0
    assert build_config(["utkface"], input_size=(40, 32)).datasets[0].heads[0].weight == 4.0  # the recipe's
    with pytest.raises(ValueError, match="agee: no such head in utkface"):
        build_config(["utkface"], head_weights={"agee": 2})

    ship = runpy.run_path(os.path.join(REPO, "recipes", "ship_dmtl.py"))
    from facezoo.train.config import RecipeConfig
    cfg = RecipeConfig(datasets=("utkface",), out="/x/runs/age", epochs=3, learning_rate=5e-4,
                       head_weights={"age": 16.0}, init="/x/runs/dmtl_joint/best.keras",
                       data_dirs={"utkface": "/data/utk"})
    command = ship["train_command"]({"config": cfg.to_dict(), "command": cfg.command()})
    assert command.endswith("--seed 0 --head-weight age=16 --init runs/dmtl_joint/best.keras --out runs/age")
    assert "--data-dir" not in command and "--lr 0.0005" in command
    assert run_recipe("train_dmtl.py", ["--dataset", "utkface", "--head-weight", "age"]) == 2
    assert run_recipe("train_dmtl.py", ["--dataset", "utkface", "--head-weight", "agee=2"]) == 2
