"""The LFW pair protocol on synthetic distances and embeddings whose answers are known; the evaluate command."""
import json
import os

import numpy as np
import pytest

from facezoo import cli, zoo
from facezoo.data.lfw_pairs import LfwPair
from facezoo.errors import UsageError
from facezoo.evaluation import verification as V
from tests.verify_helpers import lfw_layout, package_tiny_embedder


def _brute_auc(d, s):
    pos, neg = d[s], d[~s]
    wins = (neg[:, None] > pos[None]).sum() + 0.5 * (neg[:, None] == pos[None]).sum()
    return wins / (len(pos) * len(neg))


def _brute_best_accuracy(d, s):
    return max(np.mean((d <= t) == s) for t in np.r_[-1.0, d])


def test_separable_pairs_score_perfectly():
    d = np.r_[np.linspace(0.1, 0.5, 50), np.linspace(0.8, 1.5, 50)]
    s = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    folds = np.tile([1, 2], 50)
    out = V.evaluate_distances(d, s, folds)["summary"]
    assert out["accuracy"] == 1.0 and out["accuracy_std"] == 0.0 and out["auc"] == 1.0
    assert out["tar_at_far_0.01"] == 1.0 and 0.5 < out["pooled_best_threshold"] < 0.8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_best_threshold_match_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    s = rng.random(120) < 0.5
    d = np.round(rng.normal(np.where(s, 0.6, 1.0), 0.25), 1)  # rounding makes many ties
    assert V.roc_auc(d, s) == pytest.approx(_brute_auc(d, s))
    threshold, acc = V.best_threshold(d, s)
    assert acc == pytest.approx(_brute_best_accuracy(d, s))
    assert V.accuracy_at(d, s, threshold) == pytest.approx(acc)


def test_threshold_of_each_fold_comes_from_the_other_folds():
    # Fold 2's distances are shifted: its own best cut would be near 1.15, the other folds' near 0.65.
    normal = np.r_[np.full(20, 0.5), np.full(20, 0.8)]
    same = np.tile(np.r_[np.ones(20, bool), np.zeros(20, bool)], 4)
    d = np.r_[normal, normal + 0.5, normal, normal]
    folds = np.repeat([1, 2, 3, 4], 40)
    cv = V.cross_validate(d, same, folds)
    by_fold = {p["fold"]: p for p in cv["per_fold"]}
    assert by_fold[2]["threshold"] == pytest.approx(0.65) and by_fold[2]["accuracy"] == 0.5
    assert [by_fold[f]["accuracy"] for f in (1, 3, 4)] == [1.0, 1.0, 1.0]
    assert cv["accuracy_mean"] == pytest.approx(3.5 / 4) and cv["accuracy_std"] > 0.2
    with pytest.raises(UsageError, match="at least 2 folds"):
        V.cross_validate(d[:40], same[:40], folds[:40])


def test_tar_at_far_counts_allowed_false_accepts():
    impostor = np.arange(1, 1001) / 1000.0  # 1000 different pairs at 0.001 .. 1.0
    genuine = np.linspace(0.0, 0.05, 101)
    d = np.r_[genuine, impostor]
    s = np.r_[np.ones(101, bool), np.zeros(1000, bool)]
    t = V.tar_at_far(d, s, 1e-2)  # 10 false accepts allowed: accept below the 11th impostor (0.011)
    assert t["false_accepts_allowed"] == 10 and t["threshold_below"] == pytest.approx(0.011)
    assert t["tar"] == pytest.approx(np.mean(genuine < 0.011)) and t["exact"]
    strict = V.tar_at_far(d, s, 1e-4)  # under one impostor: no false accept at all
    assert strict["false_accepts_allowed"] == 0 and not strict["exact"]
    assert strict["tar"] == pytest.approx(np.mean(genuine < 0.001))


def test_failed_pairs_count_as_different():
    d = np.array([0.2, np.inf, 0.9, np.inf])
    s = np.array([True, True, False, False])
    threshold, acc = V.best_threshold(d, s)
    assert np.isfinite(threshold) and acc == 0.75
    with pytest.raises(UsageError, match="NaN"):
        V.best_threshold([np.nan, 1.0], [True, False])


@pytest.mark.parametrize("text, folds", [("1-3", (1, 2, 3)), ("1,2,5", (1, 2, 5)), ("1-2,4", (1, 2, 4)),
                                         ("all", None), ([3, 1], (1, 3))])
def test_parse_folds(text, folds):
    assert V.parse_folds(text) == folds


@pytest.mark.parametrize("bad", ["", "one", "3-1", "0-2", "1-", [0]])
def test_parse_folds_rejects_nonsense(bad):
    with pytest.raises(UsageError):
        V.parse_folds(bad)


def _synthetic_pairs(rng, people=40, per_fold=10):
    """Per person a centre; images near it. Returns (vectors keyed by 'Name/Name_000i.jpg', pairs in 4 folds)."""
    centres = rng.normal(size=(people, 16))
    vectors, pairs = {}, []
    for p in range(people):
        for i in (1, 2):
            v = centres[p] + rng.normal(scale=0.05, size=16)
            vectors[f"P{p}/P{p}_{i:04d}.jpg"] = v / np.linalg.norm(v)
    for fold in range(1, 5):
        members = list(range((fold - 1) * 10, fold * 10))
        for k in range(per_fold // 2):
            a = members[k]
            pairs.append(LfwPair(f"/lfw/P{a}/P{a}_0001.jpg", f"/lfw/P{a}/P{a}_0002.jpg", True, fold))
        for k in range(per_fold // 2):
            a, b = members[k], members[k + 5]
            pairs.append(LfwPair(f"/lfw/P{a}/P{a}_0001.jpg", f"/lfw/P{b}/P{b}_0002.jpg", False, fold))
    return vectors, pairs


def test_precomputed_embeddings_by_relative_path_and_missing_vectors():
    vectors, pairs = _synthetic_pairs(np.random.default_rng(0))
    out = V.evaluate_embeddings(vectors, pairs, "1-3")
    s = out["summary"]
    assert out["folds"] == [1, 2, 3] and s["n_pairs"] == 30 and s["accuracy"] == 1.0 and s["auc"] == 1.0
    del vectors["P0/P0_0002.jpg"]  # one image without a vector: its same pair fails (counted wrong)
    s = V.evaluate_embeddings(vectors, pairs, [1, 2, 3, 4])["summary"]
    assert s["n_images_without_vector"] == 1 and s["n_failed_pairs"] == 1 and s["auc"] < 1.0
    with pytest.raises(UsageError, match="not in the pairs file"):
        V.evaluate_embeddings(vectors, pairs, "5-6")


def test_plots_are_written(tmp_path):
    rng = np.random.default_rng(0)
    s = rng.random(200) < 0.5
    d = rng.normal(np.where(s, 0.5, 1.0), 0.2)
    written = V.plot_all(d, s, str(tmp_path), threshold=0.75)
    assert [os.path.basename(p) for p in written] == [V.ROC_FILE, V.TAR_FILE, V.HIST_FILE]
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in written)


@pytest.fixture(scope="module")
def exported_verifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    package_tiny_embedder(str(root), name="tiny_verify")
    os.symlink(zoo.model_dir("retinaface_mnet025"), root / "retinaface_mnet025")  # the detector of the photo path
    return str(root)


@pytest.mark.slow
def test_evaluate_command_on_photos(exported_verifier, tmp_path, monkeypatch, capsys):
    lfw, _names = lfw_layout(tmp_path / "lfw")
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", exported_verifier)
    out = tmp_path / "eval"
    assert cli.main(["evaluate", "tiny_verify", "--data-dir", str(lfw), "--folds", "1-2", "--out", str(out),
                     "--no-latency"]) == 0
    printed = capsys.readouterr().out
    assert "folds 1-2 (from --folds)" in printed and "TAR at FAR 0.01" in printed
    report = json.loads((out / "metrics.json").read_text())
    assert report["data"]["folds"] == [1, 2] and report["summary"]["n_pairs"] == 8
    assert report["summary"]["n_failed_pairs"] == 0 and report["summary"]["n_images"] == 12
    for f in (V.ROC_FILE, V.TAR_FILE, V.HIST_FILE):
        assert (out / f).is_file()
    # Bad input: a fold the file lacks, a folder without pairs.txt: one line, exit 2.
    assert cli.main(["evaluate", "tiny_verify", "--data-dir", str(lfw), "--folds", "7"]) == 2
    assert "folds 7 are not in the pairs file" in capsys.readouterr().err
    assert cli.main(["evaluate", "tiny_verify", "--data-dir", str(tmp_path)]) == 2
    assert "no pairs.txt" in capsys.readouterr().err
    assert cli.main(["evaluate", "tiny_verify", "--data-dir", str(lfw), "--folds", "x"]) == 2


def test_verify_and_info_commands(exported_verifier, tmp_path, monkeypatch, capsys):
    import facezoo
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", exported_verifier)
    photo = facezoo.sample_photo()
    out = tmp_path / "v.json"
    assert cli.main(["verify", photo, photo, "--model", "tiny_verify", "--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith("same person: distance 0.0000 (threshold 0.9000)")
    result = json.loads(out.read_text())
    assert result["same"] and result["faces"][0]["faceRectangle"]["width"] > 50
    assert cli.main(["verify", photo, str(tmp_path / "absent.jpg"), "--model", "tiny_verify"]) == 2
    assert "absent.jpg" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    from PIL import Image
    Image.new("RGB", (120, 120), (128, 128, 128)).save(blank)
    assert cli.main(["verify", photo, str(blank), "--model", "tiny_verify", "--detect", "yes"]) == 2
    assert "blank.png: no face found" in capsys.readouterr().err
    assert cli.main(["info", "tiny_verify"]) == 0 and "(verification)" in capsys.readouterr().out


def test_folds_flag_is_refused_for_other_models(tmp_path, capsys):
    assert cli.main(["evaluate", "dmtl_celeba", "--data-dir", str(tmp_path), "--folds", "1-3"]) == 2
    assert "--folds applies to verification models only" in capsys.readouterr().err


@pytest.mark.real_data
def test_staged_lfw_photos_all_give_a_face_through_the_embedder(exported_verifier):
    """A sample of real View-2 pairs through the photo path: every photo has a detected, aligned face."""
    from tests.helpers import data_dir
    root = data_dir("lfw")
    if root is None:
        pytest.skip("../shared/data/lfw is absent")
    pairs = V.load_pairs(root)
    sample = [p for p in pairs if p.fold in (1, 2)][::30]  # 40 pairs, both kinds, two folds
    model = zoo.load("tiny_verify", directory=os.path.join(exported_verifier, "tiny_verify"))
    out = V.evaluate_model(model, sample, progress=False)
    s = out["summary"]
    assert s["n_pairs"] == 40 and s["n_images_without_face"] == 0 and s["n_failed_pairs"] == 0
    assert 0.0 <= s["auc"] <= 1.0 and len(out["per_fold"]) == 2


def test_score_embeddings_recipe_reads_teacher_style_chunks(tmp_path, capsys):
    """Chunks like recipes/teacher_embeddings.py writes: files relative to the data root, emb, found."""
    from tests.helpers import run_recipe
    lfw, names = lfw_layout(tmp_path / "lfw")
    rng = np.random.default_rng(0)
    files, emb = [], []
    for p, name in enumerate(names):
        centre = rng.normal(size=128)
        for i in (1, 2, 3):
            files.append(f"lfw/lfw-deepfunneled/{name}/{name}_{i:04d}.jpg")
            emb.append(centre + rng.normal(scale=0.05, size=128))
    found = np.ones(len(files), bool)
    found[0] = False  # Person_A_0001: no face; its pairs fail
    half = len(files) // 2
    for k, part in enumerate((slice(0, half), slice(half, None))):
        np.savez(tmp_path / f"chunk_{k:05d}.npz", files=np.array(files[part]), emb=np.array(emb[part]),
                 found=found[part])
    out = tmp_path / "eval"
    assert run_recipe("score_embeddings.py", [str(tmp_path / "chunk_00000.npz"), str(tmp_path / "chunk_00001.npz"),
                                              "--data-dir", str(lfw), "--folds", "all", "--normalise",
                                              "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    s = report["summary"]
    assert report["data"]["folds"] == [1, 2, 3] and s["n_images_without_vector"] == 1
    assert s["n_failed_pairs"] == 2 and s["n_pairs"] == 12  # fold 1: A_0001 is in a same and a different pair
    assert (out / V.ROC_FILE).is_file()
    assert run_recipe("score_embeddings.py", [str(tmp_path / "absent.npz"), "--data-dir", str(lfw)]) == 2
    assert "absent.npz: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_facedb_commands_and_analyze_with_a_facedb(exported_verifier, tmp_path, monkeypatch, capsys):
    import facezoo
    link = os.path.join(exported_verifier, "dmtl_celeba")
    if not os.path.lexists(link):
        os.symlink(zoo.model_dir("dmtl_celeba"), link)  # analyze's attribute model beside the tiny verifier
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", exported_verifier)
    photo, db = facezoo.sample_photo(), str(tmp_path / "people")
    assert cli.main(["facedb", "list", db]) == 2
    assert "no FaceDB there" in capsys.readouterr().err
    assert cli.main(["facedb", "enroll", db, "Eileen Collins", photo, "--model", "tiny_verify"]) == 0
    assert "1 people, 1 embeddings" in capsys.readouterr().out
    assert cli.main(["facedb", "list", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["people"] == {"Eileen Collins": 1} and listed["model"]["model"] == "tiny_verify"
    assert cli.main(["facedb", "search", db, photo]) == 0
    assert "Eileen Collins 0.000 (match)" in capsys.readouterr().out
    out = tmp_path / "a.json"
    assert cli.main(["analyze", photo, "--models", "dmtl_celeba", "--facedb", db, "--json", str(out)]) == 0
    face = json.loads(out.read_text())[0]["faces"][0]
    assert face["identity"]["name"] == "Eileen Collins" and "Smiling" in face["attributes"]
    assert cli.main(["analyze", photo, "--models", "dmtl_celeba", "--facedb", db]) == 0
    assert "[Eileen Collins, distance 0.000]" in capsys.readouterr().out
    assert cli.main(["facedb", "remove", db, "Nobody"]) == 2
    assert "'Nobody' is not enrolled" in capsys.readouterr().err
    assert cli.main(["facedb", "remove", db, "Eileen Collins"]) == 0
    assert "0 people left" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_measures_the_shipped_keras_model_where_a_graph_is_shipped_too(tmp_path, capsys):
    # verify_face ships model.onnx, so facezoo.load's "auto" would pick ONNX Runtime, which has no .model: the
    # evaluator measures the Keras model the card describes.
    lfw, _names = lfw_layout(tmp_path / "lfw")
    out = tmp_path / "eval"
    assert cli.main(["evaluate", "verify_face", "--data-dir", str(lfw), "--folds", "1-2", "--out", str(out),
                     "--no-latency", "--flip-test", "on"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["params"] > 1_000_000 and report["flip_test"] is True
    assert report["summary"]["n_pairs"] == 8
    assert "flip test: each face embedded with its mirror image" in capsys.readouterr().out
