"""The GAN recipes end to end on a tiny synthetic CelebA: data -> loop -> sample grids -> resume; usage errors."""
import json
import os

import pytest

from tests.helpers import run_recipe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", ["train_gan.py", "train_srgan.py"])
def test_help_answers(name, capsys):
    assert run_recipe(name, ["--help"]) == 0
    assert "--max-steps-per-epoch" in capsys.readouterr().out


@pytest.mark.parametrize("name, args, message", [
    ("train_gan.py", ["--conditions", "Male,Smile"], "not CelebA attributes: ['Smile']"),
    ("train_gan.py", ["--image-size", "48"], "power of two"),
    ("train_srgan.py", ["--hr-size", "50"], "divisible by --scale"),
    ("train_srgan.py", ["--pretrain-epochs", "0", "--epochs", "0"], "nothing to do"),
])
def test_usage_errors_name_the_option(name, args, message, capsys, tmp_path):
    assert run_recipe(name, args + ["--data-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_train_gan_writes_grids_and_resumes(celeba_layout, tmp_path):
    root, _names, _values = celeba_layout(n=24)
    run = tmp_path / "run"
    common = ["--data-dir", str(root), "--image-size", "16", "--latent-dim", "8", "--generator-filters", "4",
              "--discriminator-filters", "4", "--conditions", "Male,Smiling", "--batch-size", "4",
              "--max-steps-per-epoch", "2", "--val-percent", "30", "--out", str(run)]
    assert run_recipe("train_gan.py", common + ["--epochs", "1"]) == 0
    assert run_recipe("train_gan.py", common + ["--epochs", "2"]) == 0  # resumes: epoch 1 is not trained again
    history = json.loads((run / "state.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["step"] == 4
    assert sorted(os.listdir(run / "samples")) == ["epoch-001.png", "epoch-002.png"]
    assert (run / "last.keras").exists() and json.loads((run / "run.json").read_text())["conditions"] == [
        "Male", "Smiling"]
