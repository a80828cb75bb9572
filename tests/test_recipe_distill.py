"""recipes/distill_trunk.py end to end on a fake teacher cache of real CelebA faces (skipped without data)."""
import os

import numpy as np
import pytest

from tests.helpers import DATA_ROOT, REPO, data_dir, run_recipe

pytestmark = pytest.mark.skipif(data_dir("celeba") is None, reason="needs ../shared/data/celeba")


def _teacher_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("teacher_embeddings", os.path.join(REPO, "recipes",
                                                                                     "teacher_embeddings.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_distill_trains_resumes_and_ships_a_loadable_trunk(tmp_path):
    from facezoo.images import load_image
    from facezoo.preprocessing import CELEBA_ALIGNED

    te = _teacher_module()
    files = te.source_files(DATA_ROOT, "celeba")[:40]
    rng = np.random.default_rng(0)
    projection = rng.normal(size=(3, 128)).astype(np.float32) * 0.01
    images = [load_image(os.path.join(DATA_ROOT, f)) for f in files]
    emb = np.stack([im.reshape(-1, 3).mean(0) @ projection for im in images]).astype(np.float32)
    h, w = images[0].shape[:2]
    landmarks = np.tile(np.asarray(CELEBA_ALIGNED.points((h, w)), np.float32), (len(files), 1, 1))
    os.makedirs(tmp_path / "teacher" / "celeba")
    np.savez(tmp_path / "teacher" / "celeba" / "chunk_00000.npz", files=np.asarray(files), emb=emb,
             landmarks=landmarks, box=np.zeros((len(files), 4), np.float32), score=np.ones(len(files), np.float32),
             found=np.ones(len(files), bool))
    args = ["--data-root", DATA_ROOT, "--teacher", str(tmp_path / "teacher"), "--out", str(tmp_path / "run"),
            "--weights", "none", "--batch-size", "8", "--epochs", "1", "--val-sample", "99", "--threads", "1"]
    assert run_recipe("distill_trunk.py", args) == 0
    assert (tmp_path / "run" / "best.keras").exists()
    assert (tmp_path / "run" / "crops" / "celeba.npz").exists()
    assert run_recipe("distill_trunk.py", args + ["--ship", "--trunk-dir", str(tmp_path / "trunks")]) == 0
    from facezoo.models import efficientnet_lite0
    from facezoo.models.face_trunk import face_embedding_model
    from facezoo.models.weights import load_keras, transfer_weights
    trunk = efficientnet_lite0(include_top=False, weights=str(tmp_path / "trunks" / "efficientnet_lite0.weights.h5"),
                               input_shape=(112, 112, 3), activation="relu6")
    student = load_keras(tmp_path / "run" / "best.keras")
    fresh = face_embedding_model(weights=None)
    report = transfer_weights(trunk, fresh)
    assert len(report["copied"]) == len(trunk.weights) and not report["mismatched"]
    shipped = {v.path: v.numpy() for v in trunk.weights}
    trained = {v.path: v.numpy() for v in student.weights if v.path in shipped}
    assert len(trained) == len(shipped)
    for path, value in shipped.items():
        np.testing.assert_array_equal(value, trained[path])


def test_a_continued_run_records_the_commands_of_the_trunk_it_started_from(tmp_path):
    import importlib.util
    import json
    spec = importlib.util.spec_from_file_location("distill_trunk", os.path.join(REPO, "recipes", "distill_trunk.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "efficientnet_lite0.json").write_text(json.dumps({"command": (
        f"{module.TEACHER_COMMAND} && python recipes/distill_trunk.py --out runs/trunk --epochs 4")}))
    fresh = module.distill_command(["--out", "runs/t2", "--epochs", "2"], str(tmp_path))
    assert fresh == f"{module.TEACHER_COMMAND} && python recipes/distill_trunk.py --out runs/t2 --epochs 2"
    # Continued in another folder: the earlier run, its --ship, then this run.
    assert module.distill_command(["--out", "runs/t2", "--weights", "facezoo-face", "--threads", "2"],
                                  str(tmp_path)) == (
        f"{module.TEACHER_COMMAND} && python recipes/distill_trunk.py --out runs/trunk --epochs 4 && "
        "python recipes/distill_trunk.py --out runs/trunk --ship && "
        "python recipes/distill_trunk.py --out runs/t2 --weights facezoo-face")
    # Continued in the same folder: the earlier run gets a folder of its own, or rerunning would resume it.
    same = module.distill_command(["--out", "runs/trunk", "--weights", "facezoo-face"], str(tmp_path))
    assert "--out runs/trunk_previous --epochs 4 && python recipes/distill_trunk.py --out runs/trunk_previous " \
           "--ship && python recipes/distill_trunk.py --out runs/trunk --weights facezoo-face" in same
