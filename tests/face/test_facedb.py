"""FaceDB: enroll / remove / search / identify against brute force, save and load, refusals, analyze(facedb=...)."""
import json

import numpy as np
import pytest

import facezoo
from facezoo import zoo
from facezoo.errors import DataFormatError, MissingDataError, UsageError
from facezoo.face.db import FaceDB
from tests.verify_helpers import package_tiny_embedder

IDENTITY = {"model": "m", "sha256": "a" * 64, "dim": 8}


def _unit(rng, n, dim=8):
    v = rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _brute(db_rows, query, k):
    """Nearest-of-their-embeddings distance per person, sorted; db_rows: list of (name, vector)."""
    best = {}
    for name, v in db_rows:
        best[name] = min(best.get(name, np.inf), float(np.linalg.norm(query - v)))
    return sorted(best.items(), key=lambda kv: kv[1])[:k]


def test_search_matches_brute_force_with_several_embeddings_per_person():
    rng = np.random.default_rng(0)
    db, rows = FaceDB(identity=IDENTITY), []
    for i in range(30):
        name = f"p{i % 11}"  # 11 people, interleaved enrollments
        v = _unit(rng, 1 + i % 3)
        db.enroll(name, embeddings=v)
        rows += [(name, x) for x in v]
    assert len(db) == 11 and db.n_embeddings == len(rows)
    queries = _unit(rng, 6)
    found = db.search(embeddings=queries, k=4)
    for q, answer in zip(queries, found):
        expected = _brute(rows, q, 4)
        assert [a["name"] for a in answer] == [n for n, _ in expected]
        np.testing.assert_allclose([a["distance"] for a in answer], [d for _, d in expected], atol=1e-5)
    single = db.search(embeddings=queries[0], k=50)  # one (dim,) query: one list; k clamps to the people
    assert isinstance(single[0], dict) and len(single) == 11


def test_identify_uses_the_threshold():
    rng = np.random.default_rng(1)
    db = FaceDB(identity=IDENTITY)
    v = _unit(rng, 3)
    db.enroll_many(["a", "b", "c"], v)
    near = v[1] + 0.01
    assert db.identify(embeddings=near, threshold=0.1)["name"] == "b"
    assert db.identify(embeddings=near, threshold=1e-4) is None
    both = db.identify(embeddings=np.stack([near, -v[0] * 0 + 5]), threshold=0.1)
    assert both[0]["name"] == "b" and both[1] is None
    with pytest.raises(UsageError, match="give threshold"):
        db.identify(embeddings=near)


def test_remove_forgets_one_person_and_keeps_the_others():
    rng = np.random.default_rng(2)
    db = FaceDB(identity=IDENTITY)
    vectors = {n: _unit(rng, k) for n, k in (("a", 2), ("b", 1), ("c", 3))}
    for n, v in vectors.items():
        db.enroll(n, embeddings=v)
    assert db.remove("b") == 1 and db.names == ["a", "c"] and "b" not in db
    np.testing.assert_array_equal(db.embeddings_of("c"), vectors["c"])
    assert db.search(embeddings=vectors["c"][0], k=1)[0]["name"] == "c"
    with pytest.raises(UsageError, match="'b' is not enrolled"):
        db.remove("b")


@pytest.mark.parametrize("call, message", [
    (lambda db: db.enroll("", embeddings=np.zeros(8)), "non-empty string"),
    (lambda db: db.enroll("x", embeddings=np.zeros(7)), r"expected shape \(N, 8\)"),
    (lambda db: db.enroll("x", embeddings=np.full(8, np.nan)), "NaN"),
    (lambda db: db.enroll("x", embeddings=np.zeros((0, 8))), "no images or embeddings"),
    (lambda db: db.enroll("x"), "not both or neither"),
    (lambda db: db.enroll("x", ["photo.jpg"]), "no embedder"),
    (lambda db: db.search(embeddings=np.zeros(8)), "empty"),
    (lambda db: db.enroll_many(["a"], np.zeros((2, 8))), "1 names for 2"),
])
def test_bad_inputs_are_one_line_errors(call, message):
    with pytest.raises(UsageError, match=message):
        call(FaceDB(identity=IDENTITY))


def test_search_k_must_be_positive():
    db = FaceDB(identity=IDENTITY)
    db.enroll("a", embeddings=np.ones(8))
    with pytest.raises(UsageError, match="k must be a positive int"):
        db.search(embeddings=np.ones(8), k=0)


def test_save_load_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(3)
    db = FaceDB(identity=IDENTITY)
    db.enroll_many([f"p{i % 7}" for i in range(20)], _unit(rng, 20))
    meta_path = db.save(tmp_path / "people")
    assert meta_path.endswith("people.json") and (tmp_path / "people.npz").is_file()
    with np.load(tmp_path / "people.npz", allow_pickle=False) as data:
        assert set(data.files) == {"embeddings", "labels"}
    q = _unit(rng, 3)
    for path in ("people", "people.npz", "people.json"):
        again = FaceDB.load(tmp_path / path, identity=IDENTITY)
        assert again.names == db.names and again.search(embeddings=q, k=3) == db.search(embeddings=q, k=3)


@pytest.mark.parametrize("field, value, what", [("model", "other", "model"), ("sha256", "b" * 64, "model version"),
                                                ("dim", 16, "embedding size")])
def test_a_file_of_another_model_or_version_is_refused(tmp_path, field, value, what):
    db = FaceDB(identity=IDENTITY)
    db.enroll("a", embeddings=np.ones(8))
    db.save(tmp_path / "db")
    with pytest.raises(DataFormatError, match=f"made with {what} .*enroll the people again"):
        FaceDB.load(tmp_path / "db", identity={**IDENTITY, field: value})


def test_damaged_or_foreign_files_are_refused(tmp_path):
    db = FaceDB(identity=IDENTITY)
    db.enroll("a", embeddings=np.ones(8))
    db.save(tmp_path / "db")
    with pytest.raises(MissingDataError, match="does not exist"):
        FaceDB.load(tmp_path / "nothing", identity=IDENTITY)
    np.savez(tmp_path / "db.npz", embeddings=np.ones((1, 8)), labels=np.zeros(1))  # swapped npz
    with pytest.raises(DataFormatError, match="not saved together"):
        FaceDB.load(tmp_path / "db", identity=IDENTITY)
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    (tmp_path / "other.npz").write_bytes(b"")
    with pytest.raises(DataFormatError, match="not a facezoo FaceDB"):
        FaceDB.load(tmp_path / "other", identity=IDENTITY)


def test_a_pickled_array_file_is_not_read(tmp_path):
    db = FaceDB(identity=IDENTITY)
    db.enroll("a", embeddings=np.ones(8))
    db.save(tmp_path / "db")
    np.savez(tmp_path / "db.npz", embeddings=np.array([object()], dtype=object), labels=np.zeros(1))
    meta = json.loads((tmp_path / "db.json").read_text())
    from facezoo.files import sha256_of
    meta["npz_sha256"] = sha256_of(tmp_path / "db.npz")
    (tmp_path / "db.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="not a FaceDB array file"):
        FaceDB.load(tmp_path / "db", identity=IDENTITY)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    folder, _card = package_tiny_embedder(str(tmp_path_factory.mktemp("exported")))
    return zoo.load("tiny_verify", directory=folder)


def test_images_enroll_and_the_file_belongs_to_the_model(embedder, tmp_path):
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    db = FaceDB(embedder)
    assert db.enroll("x", list(crops[:2])) == 2 and db.enroll("y", crops[2]) == 1
    assert db.identify(crops[2]) == {"name": "y", "distance": pytest.approx(0.0, abs=1e-3)}
    assert [r[0]["name"] for r in db.search(crops, k=1)] == ["x", "x", "y"]  # an (N, H, W, 3) batch: N answers
    db.save(tmp_path / "db")
    assert FaceDB.load(tmp_path / "db", embedder).names == ["x", "y"]
    other = zoo.load("other", directory=package_tiny_embedder(str(tmp_path), name="other", seed=5)[0])
    with pytest.raises(DataFormatError, match="made with model 'tiny_verify'"):
        FaceDB.load(tmp_path / "db", other)


@pytest.mark.slow
def test_analyze_with_a_facedb_names_the_face(embedder):
    from facezoo.face.analyze import FaceAnalyzer
    analyzer = FaceAnalyzer(models=("dmtl_celeba",))
    photo = facezoo.sample_photo()
    db = FaceDB(embedder)
    db.enroll("Eileen Collins", photo)  # the photo's face, detected and aligned like analyze does
    db.enroll("someone else", embeddings=-db.embeddings_of("Eileen Collins")[0])
    face = analyzer.analyze(photo, facedb=db)["faces"][0]
    assert face["identity"]["name"] == "Eileen Collins" and face["identity"]["distance"] < 1e-3
    assert "Smiling" in face["attributes"]
    db.remove("Eileen Collins")
    assert analyzer.analyze(photo, facedb=db)["faces"][0]["identity"] is None  # too far from anyone
    assert "identity" not in analyzer.analyze(photo)["faces"][0]
    with pytest.raises(UsageError, match="FaceDB holding its embedder"):
        analyzer.analyze(photo, facedb=FaceDB(identity=IDENTITY))
