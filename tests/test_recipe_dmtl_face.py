"""``dmtl_face`` end to end on a tiny union of every source: one network, every head, figures per source."""
import pytest

from facezoo import zoo
from tests.face_union_layout import union_layout
from tests.helpers import run_recipe


@pytest.mark.slow
def test_union_trains_ships_float16_and_predicts_every_head(tmp_path):
    root = union_layout(tmp_path / "data")
    run, exported = tmp_path / "run", tmp_path / "exported"
    assert run_recipe("train_dmtl.py", [
        "--dataset", "face", "--data-dir", f"face={root}", "--input-size", "40x32", "--width", "0.125",
        "--batch-size", "4", "--max-steps-per-epoch", "2", "--epochs", "1", "--val-percent", "50",
        "--out", str(run)]) == 0
    assert run_recipe("ship_dmtl.py", ["--run", str(run), "--name", "face_tiny", "--dataset", "face",
                                        "--data-dir", str(root), "--exported", str(exported),
                                        "--float16-storage"]) == 0
    card = zoo.ModelCard.from_json(exported / "face_tiny" / "card.json")
    assert "float16" in card.architecture["storage"] and "--float16-storage" in card.train_command
    val = card.metrics["val"]
    # Overall, then each source alone: LFW's figures are gender only, FER-2013's expression only.
    assert {"face", "face/lfw", "face/fer2013", "face/celeba"} <= set(val)
    lfw = val["face/lfw"]
    assert set(lfw) >= {"gender_accuracy", "mean_balanced_accuracy"} and "race_accuracy" not in lfw
    assert "expression_accuracy" in val["face/fer2013"] and val["face/lfw"]["n_images"] == 2
    assert "FER-2013" in card.license and "LFW" in card.license
    model = zoo.load("face_tiny", directory=str(exported / "face_tiny"))
    attrs = model.predict(zoo.sample_image())["attributes"]
    assert {"Smiling", "age", "gender", "race", "expression"} <= set(attrs) and len(attrs) == 44
    assert set(attrs["expression"]["scores"]) >= {"happiness", "contempt"}
