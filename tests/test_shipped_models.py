"""The models in exported/: installed with the package, checksum-verified, and really trained.

Accuracy checks read a small validation sample from ../shared/data and skip when it is absent.
"""
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

import facezoo
from facezoo import zoo
from facezoo.files import sha256_of
from tests.helpers import data_dir

EXPECTED = ["dmtl_celeba", "dmtl_utkface", "expression_fer"]


def test_expected_models_are_shipped():
    assert set(EXPECTED) <= set(facezoo.list_models())


def test_installed_package_loads_every_model_from_any_directory(tmp_path):
    """Runs in a fresh interpreter outside the repo, so the installed package is what is imported."""
    code = ("import json, facezoo, facezoo.zoo as z\n"
            "out = {}\n"
            "for n in facezoo.list_models(task='attributes') + facezoo.list_models(task='expression'):\n"
            "    m = facezoo.load(n)\n"
            "    r = m.predict(facezoo.sample_image())\n"
            "    out[n] = {'dir': z.model_dir(n), 'sha': m.card.sha256, 'attrs': len(r['attributes'])}\n"
            "d = facezoo.load('retinaface_mnet025')\n"
            "out['faces'] = len(facezoo.analyze(facezoo.sample_photo())['faces'])\n"
            "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(EXPECTED) <= set(out) and out.pop("faces") == 1
    for name, info in out.items():
        assert sha256_of(os.path.join(info["dir"], zoo.MODEL_FILE)) == info["sha"]
        assert info["attrs"] > 0


@pytest.mark.parametrize("name", EXPECTED)
def test_card_is_complete_and_within_budget(name):
    card = zoo.model_card(name)
    assert card.size_bytes <= 15 * 1024 * 1024
    assert "NON-COMMERCIAL" in card.license
    assert card.evaluate_command.startswith(f"facezoo evaluate {name}")
    assert card.metrics["val"] and card.split and "python recipes/train_dmtl.py" in card.train_command
    assert card.architecture["params"] > 0 and card.architecture["flops"] > 0
    assert os.path.exists(os.path.join(zoo.model_dir(name), "curves.png"))


def _evaluate_sample(name, dataset, limit):
    from facezoo.evaluation.report import evaluate
    path = data_dir(dataset)
    if path is None:
        pytest.skip(f"../shared/data/{dataset} is absent")
    import facezoo.evaluation.report as ev
    records = ev.evaluation_records
    def spread(*args, **kwargs):
        # A small, fixed sample spread evenly over the validation split: its files are in name
        # order, which for UTKFace is age order (the first few hundred are all infants).
        found = records(*args, **kwargs)
        return found[::max(1, len(found) // limit)][:limit]
    original, ev.evaluation_records = ev.evaluation_records, spread
    try:
        return evaluate(name, path, latency=False)
    finally:
        ev.evaluation_records = original


@pytest.mark.real_data
def test_dmtl_celeba_beats_majority_baseline_on_real_faces():
    report = _evaluate_sample("dmtl_celeba", "celeba", 300)
    s = report["summary"]
    assert report["n_images"] == 300
    assert s["mean_accuracy"] >= s["mean_majority_baseline"] + 0.04, s
    assert s["Male_accuracy"] >= 0.9 and s["Smiling_accuracy"] >= 0.8, s


@pytest.mark.real_data
def test_dmtl_utkface_far_above_baseline_on_real_faces():
    report = _evaluate_sample("dmtl_utkface", "utkface", 300)
    s = report["summary"]
    heads = report["heads"]
    assert s["gender_accuracy"] >= heads["utkface__gender"]["majority_baseline"] + 0.3, s
    assert s["race_accuracy"] >= heads["utkface__race"]["majority_baseline"] + 0.2, s
    assert s["age_mae"] <= 9.0, s


def test_dmtl_face_has_every_head_and_figures_per_source():
    card = zoo.model_card("dmtl_face")
    assert card.size_bytes <= 15 * 1024 * 1024 and "float16" in card.architecture["storage"]
    assert card.train_command.startswith("python recipes/teacher_embeddings.py")
    assert "--dataset face" in card.train_command
    val = card.metrics["val"]
    assert {"face", "face/celeba", "face/utkface", "face/lfw", "face/fer2013"} <= set(val)
    assert val["face/lfw"]["gender_accuracy"] > 0.9 and val["face/utkface"]["age_mae"] < 8
    attrs = facezoo.load("dmtl_face").predict(facezoo.sample_image())["attributes"]
    assert len(attrs) == 44 and {"Smiling", "age", "gender", "race", "expression"} <= set(attrs)
    assert "happiness" in attrs["expression"]["scores"]


def test_info_says_when_a_shipped_model_runs_the_flip_test(capsys):
    from facezoo import cli
    for name in ("dmtl_face", "expression_fer", "dmtl_celeba", "dmtl_utkface"):
        assert cli.main(["info", name]) == 0
        out = capsys.readouterr().out
        assert ("flip test" in out) == bool(zoo.model_card(name).architecture.get("flip_test")), name


def test_flip_test_flag_of_predict_and_analyze_overrides_the_card(tmp_path, capsys):
    """``--flip-test off`` gives the plain model's answers (``facezoo.load(..., flip_test=False)``), the default
    the card's (flip test on for dmtl_celeba), on the default backend as on keras."""
    from facezoo import cli
    from facezoo.face.analyze import FaceAnalyzer
    from facezoo.errors import UsageError
    crop = facezoo.sample_image()

    def cli_answer(*flags):
        out = tmp_path / "out.json"
        assert cli.main(["predict", crop, "--model", "dmtl_celeba", "--no-face-check", "--json", str(out), *flags]) == 0
        return json.loads(out.read_text())[0]["attributes"]

    def prob(attributes):
        return [a["probability"] for a in attributes.values()]

    for backend in ([], ["--backend", "keras"]):
        name = backend[1] if backend else None
        plain = facezoo.load("dmtl_celeba", backend=name, flip_test=False).predict(crop)["attributes"]
        flipped = facezoo.load("dmtl_celeba", backend=name).predict(crop)["attributes"]
        assert max(abs(a - b) for a, b in zip(prob(plain), prob(flipped))) > 1e-3  # the two settings differ
        off, card = cli_answer("--flip-test", "off", *backend), cli_answer(*backend)
        assert max(abs(a - b) for a, b in zip(prob(off), prob(plain))) < 1e-4
        assert max(abs(a - b) for a, b in zip(prob(card), prob(flipped))) < 1e-4
    capsys.readouterr()
    assert all(not m.flip_test for m in FaceAnalyzer(flip_test=False).models)
    assert all(m.flip_test for m in FaceAnalyzer().models)
    out = tmp_path / "faces.json"
    assert cli.main(["analyze", facezoo.sample_photo(), "--flip-test", "off", "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())[0]["faces"]) == 1
    with pytest.raises(UsageError, match="flip_test"):
        FaceAnalyzer(flip_test="off")
    with pytest.raises(UsageError, match="takes no flip_test"):
        facezoo.load("retinaface_mnet025", backend="onnxruntime", flip_test=True)


def test_verify_face_is_shipped_with_a_complete_card():
    card = zoo.model_card("verify_face")
    assert card.task == "verification" and card.size_bytes <= 15 * 1024 * 1024
    assert "NON-COMMERCIAL" in card.license and "dlib" in card.license
    assert card.evaluate_command.startswith("facezoo evaluate verify_face")
    assert card.train_command.startswith("python recipes/teacher_embeddings.py")
    assert 0 < card.thresholds["distance"] < 2
    assert os.path.exists(os.path.join(zoo.model_dir("verify_face"), "roc.png"))


def test_verify_face_embeds_unit_vectors_and_matches_a_photo_with_itself():
    import numpy as np
    model = facezoo.load("verify_face")
    photo = facezoo.sample_photo()
    vectors = model.embed([photo, np.asarray(Image.open(photo).convert("RGB"))[:, ::-1]])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same = facezoo.verify(photo, photo)
    assert same["same"] and same["distance"] < 1e-5
    assert facezoo.verify(photo, photo)["faces"][0]["faceRectangle"]["width"] > 50
