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


@pytest.mark.slow
def test_train_ship_load_generate_and_evaluate_a_tiny_generator(celeba_layout, tmp_path, monkeypatch, capsys):
    """The whole chain: train_gan.py -> ship_gan.py (card + evaluator) -> facezoo.load -> generate / evaluate."""
    from PIL import Image

    from facezoo import cli, zoo
    root, _names, _values = celeba_layout(n=24)
    run, exported = tmp_path / "run", tmp_path / "exported"
    assert run_recipe("train_gan.py", ["--data-dir", str(root), "--image-size", "16", "--latent-dim", "8",
                                       "--generator-filters", "4", "--discriminator-filters", "4",
                                       "--conditions", "Male,Smiling", "--batch-size", "4", "--epochs", "1",
                                       "--max-steps-per-epoch", "2", "--val-percent", "30", "--out", str(run)]) == 0
    assert run_recipe("ship_gan.py", ["--run", str(run), "--name", "tiny_gen", "--exported", str(exported),
                                      "--hit-rate-images", "8"]) == 0
    card = json.loads((exported / "tiny_gen" / "card.json").read_text())
    assert card["task"] == "generation" and card["architecture"]["conditions"] == ["Male", "Smiling"]
    assert set(card["files"]) == {"model.keras", "samples.png"}
    assert "--conditions Male,Smiling" in card["train_command"] and "--max-steps-per-epoch 2" in card["train_command"]
    shipped = card["metrics"]["val"]["celeba"]
    assert shipped["fd_real_floor"] > 0 and shipped["n_generated"] == shipped["n_reference"]
    assert set(card["metrics"]["val"]["attribute_hit_rates"]) == {"Male", "Smiling"}

    # The evaluator's feature trunk and attribute model is the shipped dmtl_celeba: keep it beside tiny_gen.
    os.symlink(os.path.join(zoo.registry.EXPORTED_DIR, "dmtl_celeba"), exported / "dmtl_celeba")
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", str(exported))
    gen = zoo.load("tiny_gen")
    assert gen.sample(3, seed=0, attributes={"Male": 1}).shape == (3, 16, 16, 3)
    assert cli.main(["generate", "--model", "tiny_gen", "--n", "4", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (2 * 18 + 2, 2 * 18 + 2)
    # The card's command reproduces the card's numbers.
    command = card["evaluate_command"].split()
    assert command[:3] == ["facezoo", "evaluate", "tiny_gen"] and command[-2:] == ["--hit-rate-images", "8"]
    assert cli.main(command[1:4] + [str(root), "--out", str(tmp_path / "eval")] + command[5:]) == 0
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())["summary"]
    assert again["fd_facezoo"] == pytest.approx(shipped["fd_facezoo"], rel=1e-5)
    assert "FD-facezoo floor (real vs real)" in capsys.readouterr().out


@pytest.mark.slow
def test_train_ship_and_upscale_with_a_tiny_srgan(celeba_layout, tmp_path):
    from facezoo import zoo
    root, names, _values = celeba_layout(n=24)
    run, exported = tmp_path / "run", tmp_path / "exported"
    assert run_recipe("train_srgan.py", ["--data-dir", str(root), "--hr-size", "16", "--filters", "4", "--blocks", "1",
                                         "--discriminator-filters", "4", "--discriminator-units", "8",
                                         "--batch-size", "4", "--pretrain-epochs", "1", "--epochs", "0",
                                         "--max-steps-per-epoch", "2", "--val-percent", "30", "--out", str(run)]) == 0
    assert run_recipe("ship_gan.py", ["--run", str(run), "--exported", str(exported)]) == 0
    card = json.loads((exported / "srgan_face_x4" / "card.json").read_text())
    assert card["task"] == "super_resolution" and card["architecture"]["phase"] == "pretrain"
    summary = card["metrics"]["val"]["celeba"]
    assert summary["psnr_gain_db"] == pytest.approx(summary["psnr"] - summary["bicubic_psnr"])
    sr = zoo.load("srgan_face_x4", directory=str(exported / "srgan_face_x4"))
    assert sr.upscale(str(root / "img_align_celeba" / names[0])).shape == (88, 72, 3)  # 22x18 -> x4


def test_ship_gan_answers_help_and_names_a_folder_that_is_not_a_gan_run(tmp_path, capsys):
    assert run_recipe("ship_gan.py", ["--help"]) == 0
    assert "--run" in capsys.readouterr().out
    (tmp_path / "run.json").write_text(json.dumps({"config": {}}))
    assert run_recipe("ship_gan.py", ["--run", str(tmp_path)]) == 2
    assert "not from recipes/train_gan.py" in capsys.readouterr().err
    assert run_recipe("ship_gan.py", ["--run", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "run.json").write_text(json.dumps({"latent_dim": 8}))
    assert run_recipe("ship_gan.py", ["--run", str(tmp_path)]) == 2
    assert "no trained model" in capsys.readouterr().err
