"""Shipped-generator runtimes: ``facezoo.load(...).sample`` / ``.upscale`` and ``facezoo generate`` / ``upscale``.

Tiny untrained networks are packaged with ``package_model`` into a temporary exported folder; the whole
train -> ship -> load -> evaluate chain is in ``tests/test_recipe_gan.py``.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from facezoo import cli, zoo
from facezoo.errors import ModelFileError, UsageError
from facezoo.images import ImageError
from facezoo.models.gan import dcgan_generator, srresnet_generator
from facezoo.preprocessing import PreprocessSpec
from facezoo.zoo import ModelCard
from facezoo.zoo.package import package_model


def _package(root, name, network, task, architecture):
    src = os.path.join(root, f"{name}.src.keras")
    network.save(src)
    card = ModelCard(name=name, task=task, description="tiny test generator", architecture=architecture,
                     preprocessing=PreprocessSpec((16, 16)).to_dict(), label_spaces=[],
                     training_data={"dataset": "celeba", "val_percent": 30}, split="none", license="test only")
    package_model(src, os.path.join(root, name), card)
    os.remove(src)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("exported"))
    _package(root, "tiny_cgan", dcgan_generator(latent_dim=8, image_size=16, filters=4, condition_dim=2),
             "generation", {"conditions": ["Male", "Smiling"], "condition_priors": {"Male": 1.0, "Smiling": 0.0}})
    _package(root, "tiny_gan", dcgan_generator(latent_dim=8, image_size=16, filters=4), "generation",
             {"conditions": []})
    _package(root, "tiny_sr", srresnet_generator(scale=4, filters=4, num_blocks=1), "super_resolution", {"scale": 4})
    return root


@pytest.fixture
def registry(monkeypatch, exported):
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", exported)


def test_sample_gives_uint8_faces_the_same_for_the_same_seed(registry):
    gen = zoo.load("tiny_gan")
    faces = gen.sample(5, seed=3)
    assert faces.shape == (5, 16, 16, 3) and faces.dtype == np.uint8
    np.testing.assert_array_equal(faces, gen.sample(5, seed=3, batch_size=2))  # batching changes nothing
    assert not np.array_equal(faces, gen.sample(5, seed=4))
    with pytest.raises(UsageError, match="not conditioned"):
        gen.sample(2, attributes={"Male": 1})


def test_conditional_sample_sets_requested_attributes_and_draws_the_rest_from_priors(registry):
    gen = zoo.load("tiny_cgan")
    assert gen.conditions == ("Male", "Smiling") and gen.latent_dim == 8
    rng = np.random.default_rng(0)
    c = gen.condition_vector({"Smiling": 1}, 6, rng)
    np.testing.assert_array_equal(c, [[1, 1]] * 6)  # Male from its prior 1.0, Smiling as asked
    np.testing.assert_array_equal(gen.condition_vector({"Male": "0"}, 3, rng), [[0, 0]] * 3)
    on = gen.sample(4, seed=1, attributes={"Male": 1, "Smiling": 1})
    off = gen.sample(4, seed=1, attributes={"Male": 1, "Smiling": 0})
    assert not np.array_equal(on, off)  # same noise, the condition changes the faces
    for bad, message in (({"Mal": 1}, "conditioned on"), ({"Male": 2}, "give 0 or 1")):
        with pytest.raises(UsageError, match=message):
            gen.sample(2, attributes=bad)
    with pytest.raises(UsageError, match="positive int"):
        gen.sample(0)


def test_card_conditions_must_match_the_network(tmp_path):
    _package(str(tmp_path), "broken", dcgan_generator(latent_dim=8, image_size=16, filters=4), "generation",
             {"conditions": ["Male"]})
    with pytest.raises(ModelFileError, match="do not match"):
        zoo.load("broken", directory=str(tmp_path / "broken"))


def test_upscale_multiplies_the_sides_and_refuses_large_or_bad_inputs(registry, tmp_path):
    sr = zoo.load("tiny_sr")
    img = np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    big = sr.upscale(img)
    assert big.shape == (48, 36, 3) and big.dtype == np.uint8
    path = tmp_path / "face.png"
    Image.fromarray(img).save(path)
    many = sr.upscale([str(path), img])
    np.testing.assert_array_equal(many[0], many[1])
    np.testing.assert_array_equal(many[0], big)
    with pytest.raises(UsageError, match="larger than 10 px"):
        sr.upscale(img, max_side=10)
    with pytest.raises(ImageError):
        sr.upscale(str(tmp_path / "missing.png"))


def test_cli_generate_writes_a_png_grid_and_names_bad_options(registry, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert cli.main(["generate", "--model", "tiny_cgan", "--n", "6", "--columns", "3", "--out", str(out),
                     "--attributes", "Male=1,Smiling=0", "--seed", "2"]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2, 3)  # 16 px faces, 2 px padding
    faces = zoo.load("tiny_cgan").sample(6, seed=2, attributes={"Male": 1, "Smiling": 0})
    np.testing.assert_array_equal(grid[2:18, 2:18], faces[0])  # the CLI draws exactly what sample gives
    for args, message in ((["--attributes", "Male"], "NAME=1 or NAME=0"), (["--out", str(tmp_path / "g.jpg")], "PNG"),
                          (["--model", "tiny_sr"], "not a generator"), (["--model", "nope"], "Unknown model"),
                          (["--n", "5000"], "at most 1024")):
        argv = ["generate", "--model", "tiny_cgan", "--out", str(tmp_path / "x.png")] + args
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_upscale_writes_pngs_and_reports_bad_files(registry, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"not an image")
    assert cli.main(["upscale", str(folder), "--model", "tiny_sr", "--out", str(tmp_path / "out")]) == 0
    assert os.listdir(tmp_path / "out") == ["a.x4.png"]
    assert Image.open(tmp_path / "out" / "a.x4.png").size == (40, 48)
    assert "b.jpg" in capsys.readouterr().err
    assert cli.main(["upscale", str(folder / "b.jpg"), "--model", "tiny_sr", "--out", str(tmp_path / "o2")]) == 1
    assert cli.main(["upscale", str(folder / "a.jpg"), "--model", "tiny_gan", "--out", str(tmp_path / "o3")]) == 2


def test_card_json_of_the_packaged_generator_lists_its_files(exported):
    card = json.loads(open(os.path.join(exported, "tiny_sr", "card.json")).read())
    assert card["task"] == "super_resolution" and set(card["files"]) == {"model.keras"}


@pytest.mark.parametrize("name, task", [("dcgan_face64", "generation"), ("srgan_face_x4", "super_resolution")])
def test_shipped_generator_cards_are_complete_when_shipped(name, task):
    import facezoo
    assert name in facezoo.list_models()
    card = zoo.model_card(name)
    assert card.task == task and "NON-COMMERCIAL" in card.license
    assert card.evaluate_command.startswith(f"facezoo evaluate {name}") and "recipes/ship_gan.py" in card.train_command
    summary = card.metrics["val"]["celeba"]
    assert ("fd_real_floor" in summary) if task == "generation" else ("bicubic_psnr" in summary)
    model = facezoo.load(name)
    if task == "generation":
        assert model.sample(2, seed=0).shape == (2, model.image_size, model.image_size, 3)
    else:
        assert model.upscale(np.zeros((16, 16, 3), np.uint8)).shape == (64, 64, 3)


def test_shipped_conditional_generator_makes_the_faces_it_is_asked_for():
    import facezoo
    from facezoo.evaluation.generation import AttributeRecogniser
    generator = facezoo.load("dcgan_face64")
    recogniser = AttributeRecogniser("dmtl_celeba")
    for attribute in ("Male", "Smiling"):
        on = recogniser.present(generator.sample(48, seed=1, attributes={attribute: 1}), [attribute])[attribute]
        off = recogniser.present(generator.sample(48, seed=1, attributes={attribute: 0}), [attribute])[attribute]
        assert on.mean() >= 0.7 and off.mean() <= 0.3, (attribute, on.mean(), off.mean())


def test_cli_info_and_list_show_generator_cards(registry, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny_sr" in out and "super_resolution" in out
    assert cli.main(["info", "tiny_cgan"]) == 0
    out = capsys.readouterr().out
    assert "(generation)" in out and "GFLOP" not in out  # the test card records no FLOPs


def test_cli_evaluate_of_a_generator_names_a_missing_data_folder(registry, tmp_path, capsys):
    assert cli.main(["evaluate", "tiny_gan", "--data-dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "does not exist" in err and "Traceback" not in err
