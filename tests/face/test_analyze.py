"""``facezoo.analyze`` and ``facezoo analyze``: schema, no face, bad input, determinism, alignment parity."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import facezoo
from facezoo import cli
from facezoo.face.align import align_to_spec
from facezoo.preprocessing import CELEBA_ALIGNED, PreprocessSpec
from tests.helpers import data_dir


@pytest.fixture(scope="module")
def analyzer():
    from facezoo.face.analyze import FaceAnalyzer
    return FaceAnalyzer()


def test_the_bundled_photo_has_one_face_with_every_models_answer(analyzer):
    result = analyzer.analyze(facezoo.sample_photo())
    json.dumps(result)
    assert (result["width"], result["height"]) == (512, 512)
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    r = face["faceRectangle"]
    assert set(r) == {"left", "top", "width", "height"} and 80 < r["width"] < 300
    assert list(face["landmarks"]) == ["leftEye", "rightEye", "noseTip", "mouthLeft", "mouthRight"]
    assert face["landmarks"]["leftEye"][0] < face["landmarks"]["rightEye"][0]
    attrs = face["attributes"]
    assert {attrs[h]["model"] for h in ("Smiling", "age", "gender", "race", "expression")} == {"dmtl_face"}
    assert set(face["scores"]) == {"anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness",
                                   "surprise"} and face["scores"]["contempt"] == 0.0
    assert {"probability", "present", "confidence", "abstain", "model"} == set(attrs["Male"])
    assert 10 < attrs["age"]["value"] < 90 and attrs["gender"]["label"] in ("male", "female")
    assert analyzer.analyze(facezoo.sample_photo()) == result  # deterministic


def test_no_face_is_a_result_not_an_error(analyzer, tmp_path):
    histogram = np.zeros((120, 160, 3), np.uint8)
    histogram[60:, ::8] = 255  # bars of a chart
    out = analyzer.analyze([histogram, np.full((64, 64, 3), 128, np.uint8)])
    assert [r["faces"] for r in out] == [[], []]


def test_bad_inputs_are_collected_per_image(analyzer, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    out = analyzer.analyze([str(bad), facezoo.sample_photo()], errors="collect")
    assert "not an image" in out[0]["error"] and len(out[1]["faces"]) == 1
    with pytest.raises(facezoo.errors.ImageError, match="bad.jpg"):
        analyzer.analyze(str(bad))


def test_alignment_puts_the_landmarks_on_the_framing():
    spec = PreprocessSpec((109, 89), framing=CELEBA_ALIGNED)
    # A synthetic face: dots at the framing's points of a 2.5x larger, rotated and shifted copy.
    target = np.asarray(CELEBA_ALIGNED.points((109, 89)), np.float32)
    angle = np.deg2rad(12)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    points = (target - target.mean(0)) @ rot.T * 2.5 + np.array([150, 140], np.float32)
    image = np.zeros((300, 320, 3), np.uint8)
    for x, y in points:
        image[int(round(y)) - 3:int(round(y)) + 4, int(round(x)) - 3:int(round(x)) + 4] = 255
    crop = align_to_spec(image, points, spec)
    assert crop.shape == (109, 89, 3) and crop.dtype == np.uint8
    for x, y in target:  # each dot lands (blurred by the 2.5x reduction) on its framing point
        patch = crop[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2]
        assert patch.max() > 100, (x, y)
    assert crop[5:20, 5:20].max() == 0


@pytest.mark.real_data
@pytest.mark.parametrize("dataset, model, metric, tolerance", [
    ("celeba", "dmtl_celeba", "mean_accuracy", 0.015), ("utkface", "dmtl_utkface", "gender_accuracy", 0.03)])
def test_analyze_on_aligned_crops_matches_predict(dataset, model, metric, tolerance):
    """Model-independent check of the framing on a small real sample (the full split: benchmarks/analyze.py)."""
    if data_dir(dataset) is None:
        pytest.skip(f"../shared/data/{dataset} is absent")
    import benchmarks.analyze as bench
    from facezoo.face.analyze import FaceAnalyzer
    records = bench._records(dataset, 120)
    files = [r.image for r in records]
    m = facezoo.load(model)
    analyzer = FaceAnalyzer((m,))
    predicted = [p["attributes"] for p in m.predict(files)]
    analyzed = [r["faces"][0]["attributes"] if r["faces"] else None for r in analyzer.analyze(files, max_faces=1)]
    kept = [i for i, a in enumerate(analyzed) if a is not None]
    assert len(kept) >= 0.97 * len(files)
    p = bench._score(dataset, [predicted[i] for i in kept], [records[i] for i in kept])[metric]
    a = bench._score(dataset, [analyzed[i] for i in kept], [records[i] for i in kept])[metric]
    assert abs(p - a) <= tolerance, (p, a)


def test_cli_analyze_folder_with_good_and_bad_files(tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.open(facezoo.sample_photo()).save(folder / "astronaut.png")
    Image.open(facezoo.sample_photo()).save(folder / "sub" / "deeper.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out, annotated = tmp_path / "out.json", tmp_path / "annotated"
    assert cli.main(["analyze", str(folder), "--json", str(out), "--annotate", str(annotated)]) == 0
    results = json.loads(out.read_text())
    assert [os.path.basename(r["input"]) for r in results] == ["astronaut.png", "broken.jpg"]  # not recursive
    assert len(results[0]["faces"]) == 1 and "error" in results[1]
    assert "broken.jpg" in capsys.readouterr().err
    assert os.listdir(annotated) == ["astronaut.annotated.jpg"]
    assert cli.main(["analyze", str(folder), "--recursive", "--jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [os.path.basename(r["input"]) for r in lines] == ["astronaut.png", "deeper.jpg"]


def test_demo_writes_the_annotated_photo(tmp_path, capsys):
    target = tmp_path / "demo.jpg"
    assert cli.main(["demo", "--out", str(target)]) == 0
    out = capsys.readouterr().out
    assert "1 face" in out and "gender=" in out and "age=" in out
    assert Image.open(target).size == (512, 512)


def test_predict_marks_a_crop_without_a_face():
    model = facezoo.load("dmtl_celeba")
    chart = np.full((109, 89, 3), 255, np.uint8)
    chart[50:, 10:20] = 0
    chart[30:, 40:50] = 0
    face, not_face = model.predict([facezoo.sample_image(), chart])
    assert face["face_found"] and face["face_score"] > 0.9
    assert not not_face["face_found"] and not_face["face_score"] == 0.0
    assert "attributes" in not_face  # still answered, but marked
    assert cli.summary_line(not_face).endswith("[no face found in this image: answers are not meaningful]")
    assert "face_score" not in model.predict(chart, check_face=False)





def _strategies():
    from hypothesis import strategies as st
    return st.one_of(
        st.binary(max_size=200),
        st.builds(lambda h, w, c, seed: np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8),
                  st.integers(1, 300), st.integers(1, 300), st.sampled_from([1, 3, 4]), st.integers(0, 99)),
        st.builds(lambda v: np.full((40, 40, 3), v, np.float32), st.floats(allow_nan=True, allow_infinity=True)),
        st.text(max_size=20), st.none())


def test_analyze_fuzz_answers_or_names_the_error(analyzer):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(items=st.lists(_strategies(), min_size=1, max_size=3))
    def check(items):
        results = analyzer.analyze(items, errors="collect")
        assert len(results) == len(items)
        for r in results:
            assert ("faces" in r) != ("error" in r)
            json.dumps(r)

    check()
