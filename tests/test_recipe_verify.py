"""End to end on tiny data: train_verify (resumable) -> ship_verify -> load -> verify -> evaluate -> FaceDB."""
import json
import os

import numpy as np
import pytest

from facezoo import zoo
from facezoo.files import sha256_of
from tests.helpers import run_recipe
from tests.verify_helpers import lfw_layout, tiny_embedding_model


@pytest.mark.slow
def test_train_resume_ship_evaluate_verify(tmp_path, celeba_layout, capsys):
    lfw, names = lfw_layout(tmp_path / "data" / "lfw")
    celeba_layout(n=8)  # random pixels: no face in them, so --align detect drops them (and says so)
    os.rename(tmp_path / "celeba", tmp_path / "data" / "celeba")
    init = tmp_path / "init.keras"
    tiny_embedding_model((32, 32)).save(init)
    run = tmp_path / "run"
    common = ["--init", str(init), "--data-root", str(tmp_path / "data"), "--eval-folds", "1-2",
              "--people", "2", "--images", "2", "--steps-per-epoch", "2", "--val-percent", "30",
              "--val-pairs", "8", "--out", str(run)]
    assert run_recipe("train_verify.py", common + ["--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "8 without, dropped" in printed
    info = json.loads((run / "run.json").read_text())
    # Fold 1-2 people (A-D) never train; E..L (8 LFW people) do, some held out for validation.
    assert info["sources"]["lfw"] == {"people": 8, "images": 24} and info["eval_folds"] == [1, 2]
    assert info["train_people"] + info["val_people"] == 8 and info["val_people"] >= 1
    assert run_recipe("train_verify.py", common + ["--epochs", "2"]) == 0
    history = json.loads((run / "state.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["step"] == 4  # resumed, not retrained
    assert {"val_pairs/auc", "triplet", "score"} <= set(history[-1])
    for f in ("embedding.keras", "best.keras", "curves.png", "history.csv"):
        assert (run / f).exists(), f

    exported = tmp_path / "exported"
    assert run_recipe("ship_verify.py", ["--run", str(run), "--name", "verify_tiny", "--data-dir", str(lfw),
                                          "--pair-head", "abs+chi2", "--no-latency", "--flip-test",
                                          "--exported", str(exported)]) == 0
    folder = exported / "verify_tiny"
    card = zoo.ModelCard.from_json(folder / "card.json")
    assert card.task == "verification" and card.training_data["evaluation_folds"] == [1, 2]
    assert card.training_data["threshold_folds"] == [3]
    assert card.sha256 == sha256_of(folder / "model.keras") and "pair_head.npz" in card.files
    for f in ("roc.png", "tar_at_far.png", "distances.png"):
        assert f in card.files
    summary = card.metrics["lfw_view2_folds_1-2"]["lfw"]
    assert summary["n_pairs"] == 8 and summary["n_failed_pairs"] == 0 and 0 <= summary["accuracy"] <= 1
    assert np.isfinite(card.thresholds["distance"]) and card.evaluate_command.startswith("facezoo evaluate")

    model = zoo.load("verify_tiny", directory=str(folder))
    assert card.architecture["flip_test"] is True and model.flip_test  # threshold and figures: flip-averaged
    photo = lfw / "lfw-deepfunneled" / names[0] / f"{names[0]}_0001.jpg"
    result = model.verify(str(photo), str(photo))
    assert result["same"] and result["distance"] < 1e-4 and 0 <= result["probability"] <= 1
    assert result["faces"][0]["faceRectangle"]["width"] > 40

    # The evaluator, run again from the card, reproduces the card's numbers.
    from facezoo.evaluation.verification import evaluate_verification
    again = evaluate_verification("verify_tiny", str(lfw), directory=str(folder), latency=False, progress=False)
    assert again["summary"]["accuracy"] == pytest.approx(summary["accuracy"])
    assert again["data"]["folds"] == [1, 2] and again["data"]["folds_from"] == "the model card"


@pytest.mark.parametrize("recipe, options", [
    ("train_verify.py", ["--init", "--data-root", "--eval-folds", "--people", "--images", "--margin", "--am-weight",
                         "--epochs", "--out"]),
    ("ship_verify.py", ["--run", "--model", "--eval-folds", "--threshold-folds", "--pair-head", "--flip-test",
                        "--exported"]),
    ("score_embeddings.py", ["--data-dir", "--folds", "--normalise", "--out"]),
])
def test_recipe_help(recipe, options, capsys):
    assert run_recipe(recipe, ["--help"]) == 0
    out = capsys.readouterr().out
    assert all(o in out for o in options)


def test_train_recipe_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    assert run_recipe("train_verify.py", ["--init", str(tmp_path / "absent.keras")]) == 2
    assert "absent.keras: no such file" in capsys.readouterr().err
    init = tmp_path / "init.keras"
    init.write_bytes(b"")
    assert run_recipe("train_verify.py", ["--init", str(init), "--eval-folds", "3-1"]) == 2
    assert "runs backwards" in capsys.readouterr().err
    assert run_recipe("train_verify.py", ["--init", str(init), "--no-lfw", "--no-celeba"]) == 2
    assert run_recipe("ship_verify.py", ["--model", str(init), "--data-dir", str(tmp_path)]) == 2
    assert "no pairs.txt" in capsys.readouterr().err


def test_a_run_continued_from_a_shipped_model_records_its_commands_first(tmp_path):
    import runpy
    from types import SimpleNamespace
    ship = runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                       "recipes", "ship_verify.py"))
    shipped = tmp_path / "exported" / "verify_face"
    shipped.mkdir(parents=True)
    (shipped / "card.json").write_text(json.dumps({"train_command": "python recipes/train_verify.py --out runs/a && "
                                                                    "python recipes/ship_verify.py --run runs/a",
                                                   "license": "LFW terms."}))
    run = {"config": {"init": str(shipped / "model.keras")},
           "command": "python recipes/train_verify.py --init exported/verify_face/model.keras --threads 2 --out runs/b"}
    assert ship["init_shipped_card"](run)["license"] == "LFW terms."
    chain = ship["train_chain"](run, SimpleNamespace(), ["--run", "runs/b", "--exported", "x"]).split(" && ")
    assert chain == ["python recipes/train_verify.py --out runs/a", "python recipes/ship_verify.py --run runs/a",
                     "python recipes/train_verify.py --init exported/verify_face/model.keras --out runs/b",
                     "python recipes/ship_verify.py --run runs/b"]
    (tmp_path / "exported" / "verify_face" / "run.json").write_text("{}")  # a run folder, not a shipped model
    assert ship["init_shipped_card"](run) == {}
