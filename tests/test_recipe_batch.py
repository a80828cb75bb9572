"""recipes/batch/beam_predict.py: the per-image functions (without Beam) and the pipeline on Beam's DirectRunner.

The pipeline tests skip when ``apache_beam`` is not importable (``pip install "facezoo[batch]"``).
"""
import glob
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facezoo
from facezoo.errors import ImageError
from facezoo.export import export_model
from facezoo.export.serving import decode_image_bytes
from facezoo.images import load_image
from recipes.batch import beam_predict as bp
from tests.helpers import package_tiny

pytestmark = pytest.mark.slow  # one tiny SavedModel export (~5 s) shared by the module


def _encode(array, fmt, **kwargs):
    buf = io.BytesIO()
    (array if isinstance(array, Image.Image) else Image.fromarray(array)).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _pixels(h=40, w=30, seed=0):
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    smooth = np.stack([(xx * 7) % 256, (yy * 5) % 256, (xx + yy * 3) % 256], -1)
    return np.clip(smooth + rng.integers(-20, 20, smooth.shape), 0, 255).astype(np.uint8)


def _rotated_jpeg():
    img = Image.fromarray(_pixels(30, 44))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    return _encode(img, "JPEG", quality=90, exif=exif.tobytes())


PLAIN = {
    "rgb.jpg": lambda: _encode(_pixels(), "JPEG", quality=88),
    "grey.jpg": lambda: _encode(_pixels()[..., 0], "JPEG", quality=88),
    "rgba.png": lambda: _encode(np.concatenate([_pixels(), _pixels(seed=1)[..., :1]], -1), "PNG"),
    "grey.png": lambda: _encode(_pixels()[..., 1], "PNG"),
    "rgb.bmp": lambda: _encode(_pixels(), "BMP"),
}
CONVERTED = {
    "rotated.jpg": _rotated_jpeg,
    "rgb.webp": lambda: _encode(_pixels(), "WEBP", lossless=True),
    "rgb.tif": lambda: _encode(_pixels(), "TIFF"),
    "palette.gif": lambda: _encode(Image.fromarray(_pixels()).quantize(16), "GIF"),
    "palette.png": lambda: _encode(Image.fromarray(_pixels()).quantize(16), "PNG"),
    "grey16.png": lambda: _encode(Image.fromarray((_pixels()[..., 0].astype(np.uint16) * 257)), "PNG"),
    "cmyk.jpg": lambda: _encode(Image.fromarray(_pixels()).convert("CMYK"), "JPEG", quality=95),
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_files_pass_through_unchanged(name):
    data = PLAIN[name]()
    assert bp.prepare_image(data, name) is data


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_other_files_become_png_of_facezoos_pixels(name):
    data = CONVERTED[name]()
    prepared = bp.prepare_image(data, name)
    assert prepared[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(prepared)).convert("RGB")), load_image(data))


@pytest.mark.parametrize("name", sorted(PLAIN) + sorted(CONVERTED))
def test_the_graph_decodes_prepared_bytes_to_facezoos_pixels(name):
    data = {**PLAIN, **CONVERTED}[name]()
    graph = decode_image_bytes(tf.constant(bp.prepare_image(data, name))).numpy()
    np.testing.assert_array_equal(graph, load_image(data))
    if name == "rotated.jpg":
        assert graph.shape[:2] == (44, 30)  # stored 30 high, 44 wide, shown turned


@pytest.mark.parametrize("data, problem", [
    (b"", "empty file"), (b"not an image at all", "not an image"), (PLAIN["rgb.jpg"]()[:30], "")])
def test_unreadable_files_are_one_line_image_errors(data, problem):
    with pytest.raises(ImageError) as e:
        bp.prepare_image(data, "dir/bad.jpg")
    message = str(e.value)
    assert message.startswith("dir/bad.jpg: ") and "\n" not in message and problem in message


def test_split_outputs_checks_the_batch():
    rows = bp.split_outputs({"a_value": np.array([1.0, 2.0]), "a_probabilities": np.eye(2, 3)})
    assert len(rows) == 2 and rows[1]["a_value"] == 2.0
    np.testing.assert_array_equal(rows[0]["a_probabilities"], [1, 0, 0])
    with pytest.raises(ValueError, match="batch size"):
        bp.split_outputs({"a_value": np.zeros(2), "b_value": np.zeros(3)})


def test_describe_row_groups_fields_and_rejects_unknown_outputs():
    row = {"Wearing_Hat_probability": np.float32(0.25), "Wearing_Hat_present": np.bool_(False),
           "gender_label": np.bytes_(b"female"), "gender_index": np.int64(1),
           "gender_probabilities": np.array([0.1, 0.9], np.float32)}
    out = bp.describe_row(row, {"gender": ["male", "female"]})
    assert out["Wearing_Hat"] == {"probability": 0.25, "present": False}
    assert out["gender"]["label"] == "female" and out["gender"]["index"] == 1
    assert out["gender"]["probabilities"] == pytest.approx({"male": 0.1, "female": 0.9})
    assert bp.describe_row(row)["gender"]["probabilities"] == pytest.approx([0.1, 0.9])  # no card: a list
    json.dumps(out)
    with pytest.raises(ValueError, match="unexpected output"):
        bp.describe_row({"logits": np.zeros(3)})


def test_error_answers_become_error_lines():
    assert bp.is_error({"error": "x"}) and not bp.is_error({"error_value": 1.0})
    line = json.loads(bp.result_line("a.jpg", {"error": "bad data"}, model="m"))
    assert line == {"file": "a.jpg", "error": "a.jpg: bad data"}


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A tiny random DMTL model (40 CelebA attributes, age, gender, race) packaged and exported as a SavedModel."""
    root = tmp_path_factory.mktemp("tiny")
    folder, _card = package_tiny(str(root))
    fm = facezoo.load("tiny_model", directory=folder)
    fm.card.label_spaces = [facezoo.attributes.CELEBA_40.to_dict(), facezoo.attributes.UTKFACE.to_dict()]
    path = export_model(fm, format="saved_model", out=str(root / "serving"), version=2)
    return fm, path


def _assert_matches_predict(attributes, expected):
    """``describe_row`` output against ``FaceModel.predict``'s (rounded to 4 decimals, values to 2)."""
    assert set(attributes) == set(expected)
    for attr, want in expected.items():
        got = attributes[attr]
        for field, value in want.items():
            if isinstance(value, bool) or isinstance(value, str):
                assert got[field] == value, (attr, field)
            elif isinstance(value, dict):
                assert got[field] == pytest.approx(value, abs=2e-4), (attr, field)
            else:
                assert got[field] == pytest.approx(value, abs=2e-4 if field != "value" else 0.006), (attr, field)


def test_lines_from_the_exported_graph_match_predict(tiny_export):
    fm, path = tiny_export
    images = [PLAIN["rgb.jpg"](), CONVERTED["rotated.jpg"](), CONVERTED["rgb.webp"](), PLAIN["rgba.png"]()]
    loaded = tf.saved_model.load(path)
    prepared = [bp.prepare_image(b, f"img{i}") for i, b in enumerate(images)]
    rows = bp.split_outputs(loaded.signatures["serving_default"](image_bytes=tf.constant(prepared)))
    classes = bp.class_names(bp.read_card(path))
    assert classes["gender"] == list(facezoo.attributes.UTKFACE["gender"].classes)
    expected = fm.predict(images, check_face=False)
    for i, (row, want) in enumerate(zip(rows, expected)):
        line = json.loads(bp.result_line(f"img{i}", row, model=fm.card.name, classes=classes))
        assert line["file"] == f"img{i}" and line["model"] == "tiny_model"
        _assert_matches_predict(line["attributes"], want["attributes"])


def test_resolve_model_dir(tiny_export, tmp_path):
    _fm, path = tiny_export
    assert bp.resolve_model_dir(path) == path
    assert bp.resolve_model_dir(os.path.dirname(path)) == path  # the model folder: its highest version
    with pytest.raises(bp.BatchUsageError, match="no such folder"):
        bp.resolve_model_dir(str(tmp_path / "missing"))
    with pytest.raises(bp.BatchUsageError, match="holds no SavedModel"):
        bp.resolve_model_dir(str(tmp_path))
    serving = os.path.dirname(os.path.dirname(path))  # facezoo export's DIR, with models.config
    with pytest.raises(bp.BatchUsageError, match="serving folder of several models .tiny_model."):
        bp.resolve_model_dir(serving)


def test_input_pattern(tmp_path):
    assert bp.input_pattern(str(tmp_path)) == str(tmp_path) + "/**"
    assert bp.input_pattern(str(tmp_path / "*.jpg")) == str(tmp_path / "*.jpg")
    assert bp.input_pattern("gs://bucket/faces/") == "gs://bucket/faces/**"
    with pytest.raises(bp.BatchUsageError, match="no such file or folder"):
        bp.input_pattern(str(tmp_path / "missing"))


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        bp.parse_args(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--model", "--input", "--output", "--batch-size", "--runner"))


def test_bad_arguments_print_one_line_and_exit_2(tmp_path, capsys):
    rc = bp.main(["--model", str(tmp_path / "missing"), "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("beam_predict.py: error: ")
    assert ("--model" in err) if bp.beam is not None else ("apache-beam is not installed" in err)
    with pytest.raises(SystemExit) as e:
        bp.parse_args(["--model", "m", "--input", "i", "--output", "o", "--batch-size", "0"])
    assert e.value.code == 2


def test_pipeline_on_the_direct_runner(tiny_export, tmp_path):
    pytest.importorskip("apache_beam")
    fm, path = tiny_export
    folder = tmp_path / "images"
    good = {"a/rgb.jpg": PLAIN["rgb.jpg"](), "a/b/rotated.jpg": CONVERTED["rotated.jpg"](),
            "grey.png": PLAIN["grey.png"](), "rgb.webp": CONVERTED["rgb.webp"]()}
    bad = {"corrupt.jpg": b"\xff\xd8\xff\xe0 this is no JPEG",
           # a whole header and half the data: PIL reads the header, so it reaches the graph, which refuses it
           "truncated.jpg": PLAIN["rgb.jpg"]()[:len(PLAIN["rgb.jpg"]()) // 2]}
    for name, data in {**good, **bad, "notes.txt": b"not an image"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    out = tmp_path / "out" / "results"
    rc = bp.main(["--model", os.path.dirname(path), "--input", str(folder), "--output", str(out),
                  "--batch-size", "3", "--num-shards", "1"])
    assert rc == 0
    files = glob.glob(str(out) + "-*.jsonl")
    assert len(files) == 1
    lines = [json.loads(line) for line in open(files[0])]
    by_file = {os.path.relpath(line["file"], folder): line for line in lines}
    assert sorted(by_file) == sorted({**good, **bad})  # one line per image; the .txt file is not an image
    for name in bad:
        assert by_file[name]["error"].startswith(str(folder / name) + ": ") and "attributes" not in by_file[name]
    expected = dict(zip(good, fm.predict(list(good.values()), check_face=False)))
    for name, want in expected.items():
        assert by_file[name]["model"] == "tiny_model"
        _assert_matches_predict(by_file[name]["attributes"], want["attributes"])


def test_pipeline_with_no_images_exits_1(tiny_export, tmp_path):
    pytest.importorskip("apache_beam")
    _fm, path = tiny_export
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc = bp.main(["--model", path, "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o" / "r"),
                  "--num-shards", "1"])
    assert rc == 1
    lines = [json.loads(line) for line in open(glob.glob(str(tmp_path / "o" / "r") + "-*.jsonl")[0])]
    assert len(lines) == 1 and "error" in lines[0]
