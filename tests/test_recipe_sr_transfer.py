"""recipes/sr_transfer.py on a tiny setup: synthetic CelebA and LFW trees, tiny packaged attribute and SR models."""
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from facezoo import zoo
from facezoo.attributes import CELEBA_40, CELEBA_NAMES
from facezoo.evaluation.generation import degrade
from facezoo.models.gan import srresnet_generator
from facezoo.preprocessing import PreprocessSpec
from facezoo.zoo import ModelCard
from facezoo.zoo.package import finalize_files, package_model
from tests.helpers import REPO, package_tiny, run_recipe


def _recipe():
    spec = importlib.util.spec_from_file_location("sr_transfer", os.path.join(REPO, "recipes", "sr_transfer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_attribute_groups_cover_every_celeba_attribute_once():
    groups = _recipe().ATTRIBUTE_GROUPS
    assert sorted(n for names in groups.values() for n in names) == sorted(CELEBA_NAMES)


def test_degrade_downscales_blurs_and_compresses():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 40, 3)).astype(np.uint8)
    small = degrade(image, 4, blur_sigma=0.0, jpeg_quality=None)
    assert small.shape == (12, 10, 3) and small.dtype == np.uint8
    blurred = degrade(image, 4, blur_sigma=2.0, jpeg_quality=None)
    assert blurred.std() < small.std()  # blur before downscaling removes more of the noise
    low, high = degrade(image, 4, 1.0, 10), degrade(image, 4, 1.0, 95)
    assert low[:2] == b"\xff\xd8" and len(low) < len(high)  # JPEG files; lower quality, fewer bytes


@pytest.fixture
def tiny_setup(celeba_layout, tmp_path, monkeypatch):
    root, names, _values = celeba_layout(n=40)
    for i, name in enumerate(names):  # faces large enough to survive x4 downscaling (48x40 -> 12x10)
        pixels = np.random.default_rng(i).integers(0, 256, (48, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img_align_celeba" / name)
    exported = tmp_path / "exported"
    exported.mkdir()
    one_per_group = [CELEBA_40[n] for n in ("Male", "Bangs", "Eyeglasses", "Big_Nose", "Smiling", "Wearing_Hat")]
    folder, card = package_tiny(str(exported), name="tiny_attr", input_size=(48, 40),
                                datasets={"celeba": one_per_group})  # few heads: quick to trace
    card.preprocessing["framing"] = zoo.model_card("dmtl_celeba").preprocessing["framing"]  # analyze aligns to it
    finalize_files(folder, card)
    src = str(tmp_path / "sr.keras")
    srresnet_generator(scale=4, filters=4, num_blocks=1).save(src)
    package_model(src, str(exported / "tiny_sr"), ModelCard(
        name="tiny_sr", task="super_resolution", description="tiny", architecture={"scale": 4},
        preprocessing=PreprocessSpec((12, 10)).to_dict(), label_spaces=[], training_data={}, split="none",
        license="test only"))
    os.symlink(os.path.join(zoo.registry.EXPORTED_DIR, "retinaface_mnet025"), exported / "retinaface_mnet025")
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", str(exported))
    lfw = tmp_path / "lfw"
    for i, (person, sex) in enumerate((("Ann_A", "female"), ("Bob_B", "male"), ("Cy_C", "male"))):
        folder = lfw / "lfw-deepfunneled" / person
        folder.mkdir(parents=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"{person}_0001.jpg")
    (lfw / "male_names.txt").write_text("Bob_B_0001.jpg\nCy_C_0001.jpg\n")
    (lfw / "female_names.txt").write_text("Ann_A_0001.jpg\n")
    return root, lfw, tmp_path / "out"


@pytest.mark.slow
def test_sr_transfer_evaluates_conditions_per_group_fine_tunes_and_runs_lfw(tiny_setup, capsys):
    """One run does all three parts (each costs model tracing: one run keeps the suite short)."""
    root, lfw, out = tiny_setup
    args = ["--sr-model", "tiny_sr", "--attribute-model", "tiny_attr", "--data-dir", str(root), "--lfw-dir", str(lfw),
            "--finetune-epochs", "1", "--finetune-max-steps", "1", "--finetune-batch", "4", "--out", str(out)]
    assert run_recipe("sr_transfer.py", args) == 0
    result = json.loads((out / "sr_transfer.json").read_text())
    assert list(result["celeba"]) == ["original", "degraded", "bicubic", "sr"]
    n = result["celeba"]["original"]["n_images"]
    assert n > 0 and all(c["n_images"] == n for c in result["celeba"].values())
    assert set(result["celeba"]["sr"]["groups"]) == set(_recipe().ATTRIBUTE_GROUPS)
    # The degraded tree holds the small JPEGs; the restored ones are x4 of them.
    some = sorted(os.listdir(out / "celeba" / "degraded" / "img_align_celeba"))[0]
    assert Image.open(out / "celeba" / "degraded" / "img_align_celeba" / some).size == (10, 12)
    assert Image.open(out / "celeba" / "sr" / "img_align_celeba" / some).size == (40, 48)
    labels = (out / "celeba" / "sr" / "list_attr_celeba.txt").read_text().splitlines()
    assert int(labels[0]) == len(labels) - 2 == n
    assert set(result["lfw"]) == {"original", "degraded", "bicubic", "sr"}
    assert all(m["n_photos"] == 3 and 0.0 <= m["found"] <= 1.0 for m in result["lfw"].values())
    assert "all 40" in capsys.readouterr().out
    tuned = result["finetuned_on_sr"]
    assert tuned["n_images"] == n and 0.0 <= tuned["mean_accuracy"] <= 1.0
    assert "--init" in tuned["command"] and (out / "finetune" / "best.keras").exists()
    # Every face was restored for fine-tuning, under the same file names.
    restored = os.listdir(out / "celeba_all" / "sr" / "img_align_celeba")
    assert sorted(restored) == sorted(os.listdir(root / "img_align_celeba"))


def test_sr_transfer_names_bad_options(tmp_path, capsys):
    assert run_recipe("sr_transfer.py", ["--data-dir", str(tmp_path / "nope")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert run_recipe("sr_transfer.py", ["--data-dir", str(tmp_path), "--lfw-dir", "none", "--jpeg", "0"]) == 2
    assert "--jpeg" in capsys.readouterr().err
    assert run_recipe("sr_transfer.py", ["--help"]) == 0
    assert "--finetune-epochs" in capsys.readouterr().out

