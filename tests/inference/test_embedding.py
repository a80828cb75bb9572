"""FaceEmbedder (card task verification): embed crops and photos, distance, verify, the pair head, facezoo.verify."""
import json
import os

import numpy as np
import pytest

import facezoo
from facezoo import zoo
from facezoo.errors import ChecksumError, ImageError, ModelFileError, UsageError
from facezoo.inference.embedding import PAIR_HEAD_FILE, FaceEmbedder, NoFaceError
from facezoo.inference.pair_head import PairClassifier, pair_features
from tests.verify_helpers import package_tiny_embedder


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    folder, _card = package_tiny_embedder(str(tmp_path_factory.mktemp("exported")))
    return zoo.load("tiny_verify", directory=folder)


def _crops(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_verification_cards_load_a_face_embedder(embedder):
    assert isinstance(embedder, FaceEmbedder) and embedder.dim == 128 and embedder.threshold == 0.9
    assert embedder.identity == {"model": "tiny_verify", "sha256": embedder.card.sha256, "dim": 128}


def test_embeddings_are_unit_length_and_batching_does_not_change_them(embedder):
    crops = _crops(5)
    together = embedder.embed(list(crops), batch_size=2)
    assert together.shape == (5, 128) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([embedder.embed(c) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(crops), together, atol=1e-6)  # an (N, H, W, 3) array is N images
    # A crop of the input size goes straight in under "auto"; a bigger image with detect=False is centre-fitted.
    np.testing.assert_allclose(embedder.embed(list(crops), detect=False), together, atol=1e-6)
    assert embedder.embed(np.kron(crops[0], np.ones((2, 2, 1), np.uint8)), detect=False).shape == (1, 128)


def test_flip_test_embeds_the_mean_of_a_face_and_its_mirror(embedder):
    crops = _crops(3, seed=4)
    assert embedder.flip_test is False  # the card says nothing: plain embeddings
    plain, mirrored = embedder.embed(crops), embedder.embed(crops[:, :, ::-1].copy())
    assert not np.allclose(plain, mirrored, atol=1e-3)  # the network is not mirror-symmetric, so this can differ
    embedder.flip_test = True
    try:
        both = embedder.embed(list(crops), batch_size=2)
        np.testing.assert_allclose(embedder.embed(crops[:, :, ::-1].copy()), both, atol=1e-5)  # mirror-invariant
    finally:
        embedder.flip_test = False
    want = (plain + mirrored) / np.linalg.norm(plain + mirrored, axis=1, keepdims=True)
    np.testing.assert_allclose(both, want, atol=1e-5)


def test_photos_are_detected_and_aligned(embedder):
    photo = facezoo.sample_photo()
    vectors, faces = embedder.embed_faces([photo, _crops(1)[0]], detect="auto")
    assert faces[0] is not None and faces[0].score > 0.9 and faces[1] is None
    # The aligned crop of the detected face is what went in.
    from facezoo.images import load_image
    crop = embedder.align(load_image(photo), faces[0])
    np.testing.assert_allclose(vectors[0], embedder.embed_crops(crop[None])[0], atol=1e-5)


def test_no_face_and_bad_inputs_are_clear_errors(embedder, tmp_path):
    blank = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=r"<array \(200, 200, 3\) uint8>: no face found"):
        embedder.embed(blank, detect=True)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="bad.jpg"):
        embedder.embed(str(bad))
    with pytest.raises(UsageError, match="detect must be"):
        embedder.embed(_crops(1)[0], detect="yes")
    with pytest.raises(UsageError, match="batch_size"):
        embedder.embed(_crops(1)[0], batch_size=0)
    with pytest.raises(UsageError, match="embed_crops"):
        embedder.embed_crops(_crops(1)[0])


def test_distance_is_euclidean_and_checks_shapes(embedder):
    e = embedder.embed(list(_crops(3)))
    assert embedder.distance(e[0], e[0]) == pytest.approx(0.0, abs=1e-6)
    assert embedder.distance(e[0], e[1]) == pytest.approx(float(np.linalg.norm(e[0] - e[1])), rel=1e-5)
    np.testing.assert_allclose(embedder.distance(e[0], e), np.linalg.norm(e - e[0], axis=1), rtol=1e-5, atol=1e-6)
    with pytest.raises(UsageError, match=r"expected shape \(N, 128\)"):
        embedder.distance(e[0, :64], e[0])
    with pytest.raises(UsageError, match="NaN"):
        embedder.distance(np.full(128, np.nan), e[0])
    with pytest.raises(UsageError, match="3 embeddings against 2"):
        embedder.distance(e, e[:2])


def test_verify_answers_with_the_card_threshold(embedder):
    a, b = _crops(2)
    same = embedder.verify(a, a)
    assert same["same"] and same["distance"] < 1e-4 and same["threshold"] == 0.9
    assert same["faces"] == [{"input": "<array (32, 32, 3) uint8>", "crop": True}] * 2
    d = embedder.verify(a, b)["distance"]
    assert embedder.verify(a, b, threshold=d / 2)["same"] is False
    assert embedder.verify(a, b, threshold=d * 2)["same"] is True
    json.dumps(embedder.verify(facezoo.sample_photo(), a))
    assert facezoo.verify(a, a, model=embedder)["same"]
    with pytest.raises(UsageError, match="registered name or a FaceEmbedder"):
        facezoo.verify(a, a, model=3)


def _separable_pairs(rng, n=200, dim=128):
    centres = rng.normal(size=(n, dim))
    a = centres + rng.normal(scale=0.3, size=(n, dim))
    same = np.arange(n) % 2 == 0
    partner = np.where(same[:, None], centres, rng.normal(size=(n, dim)))
    b = partner + rng.normal(scale=0.3, size=(n, dim))
    norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return norm(a), norm(b), same


def test_pair_features_follow_the_notes():
    a, b = np.array([[0.5, -0.2, 0.0]]), np.array([[0.1, 0.2, 0.0]])
    feats = pair_features(a, b, "abs+chi2")
    np.testing.assert_allclose(feats[0, :3], [0.4, 0.4, 0.0])
    np.testing.assert_allclose(feats[0, 3:], [0.16 / 0.6, 0.16 / 0.4, 0.0], rtol=1e-4)
    with pytest.raises(UsageError, match="differ in shape"):
        pair_features(a, b[:, :2])


def test_pair_head_learns_and_round_trips_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    a, b, same = _separable_pairs(rng)
    head = PairClassifier("abs+chi2").fit(a, b, same)
    ta, tb, tsame = _separable_pairs(rng)
    p = head.probability(ta, tb)
    assert np.mean((p >= 0.5) == tsame) > 0.9  # held-out pairs
    path = head.save(tmp_path / "head.npz")
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"weights", "bias", "mean", "std", "meta"}
    again = PairClassifier.load(path)
    np.testing.assert_allclose(again.probability(ta, tb), p)
    with pytest.raises(UsageError, match="both same-person and different-person"):
        PairClassifier().fit(a, b, np.ones(len(a), bool))
    with pytest.raises(UsageError, match="not fitted"):
        PairClassifier().probability(a, b)


def test_pair_head_files_that_are_not_ours_are_refused(tmp_path):
    junk = tmp_path / "junk.npz"
    np.savez(junk, weights=np.array([object()], dtype=object))
    with pytest.raises(ModelFileError, match="not a facezoo pair head"):
        PairClassifier.load(junk)
    with pytest.raises(ModelFileError, match="missing"):
        PairClassifier.load(tmp_path / "absent.npz")


def test_a_shipped_pair_head_is_checksummed_and_used(tmp_path):
    rng = np.random.default_rng(1)
    a, b, same = _separable_pairs(rng)
    head_file = PairClassifier("abs").fit(a, b, same).save(tmp_path / PAIR_HEAD_FILE)
    folder, card = package_tiny_embedder(str(tmp_path), name="with_head", extra_files=[head_file])
    model = zoo.load("with_head", directory=folder)
    assert model.pair_head is not None and 0 <= model.verify(*_crops(2))["probability"] <= 1
    with open(os.path.join(folder, PAIR_HEAD_FILE), "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ChecksumError, match="pair_head.npz"):
        zoo.load("with_head", directory=folder)


def test_a_card_without_threshold_says_how_to_fix_it(tmp_path):
    folder, card = package_tiny_embedder(str(tmp_path), name="no_threshold")
    card.thresholds = {}
    from facezoo.zoo.package import finalize_files
    finalize_files(folder, card)
    model = zoo.load("no_threshold", directory=folder)
    with pytest.raises(ModelFileError, match="ship_verify"):
        model.verify(*_crops(2))


def test_the_central_face_is_picked_for_lfw_style_photos():
    from facezoo.face.detect import Face
    from facezoo.inference.embedding import _central
    big_corner = Face((0, 0, 120, 120), np.zeros((5, 2), np.float32), 0.99)
    centred = Face((100, 100, 50, 50), np.zeros((5, 2), np.float32), 0.9)
    assert _central([big_corner, centred], (250, 250, 3)) is centred
    with pytest.raises(UsageError, match="pick must be"):
        FaceEmbedder.embed_faces(object.__new__(FaceEmbedder), [], pick="middle")
