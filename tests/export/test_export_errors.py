"""Bad inputs to ``facezoo export`` / ``export_model``: one-line user errors before any work."""
import os

import pytest

from facezoo import cli
from facezoo.errors import UsageError
from facezoo.export import check_export_arguments, export_model


@pytest.mark.parametrize("kwargs, message", [
    ({"format": "keras"}, "unknown format"),
    ({"format": "onnx", "quantize": "int8"}, "tflite only"),
    ({"format": "saved_model", "quantize": "float16"}, "tflite only"),
    ({"format": "tflite", "quantize": "int4"}, "unknown quantization"),
    ({"format": "tflite", "quantize": "int8"}, "needs --calibration"),
    ({"format": "tflite", "quantize": "dynamic", "calibration": "."}, "int8 only"),
    ({"format": "tflite", "quantize": "int8", "calibration": "/no/such/folder"}, "not a folder"),
])
def test_bad_flag_combinations(tmp_path, kwargs, message):
    with pytest.raises(UsageError, match=message):
        check_export_arguments(out=str(tmp_path), **kwargs)


def test_output_must_be_a_writable_folder(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        check_export_arguments("saved_model", str(a_file))
    with pytest.raises(UsageError, match="not a writable folder"):
        check_export_arguments("saved_model", str(a_file / "below"))
    check_export_arguments("saved_model", str(tmp_path / "new" / "deeper"))  # created on export
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UsageError, match="not a writable folder"):
            check_export_arguments("saved_model", str(locked / "out"))


def test_unknown_model_and_bad_version(tmp_path):
    with pytest.raises(UsageError, match="Unknown model 'dmtl_celebaa'.*dmtl_celeba"):
        export_model("dmtl_celebaa", format="saved_model", out=str(tmp_path))
    with pytest.raises(UsageError, match="version"):
        export_model("dmtl_celeba", format="saved_model", out=str(tmp_path), version=0)


@pytest.mark.parametrize("argv, message", [
    (["export", "nope", "--format", "saved_model", "--out", "{tmp}"], "Unknown model 'nope'"),
    (["export", "dmtl_celeba", "--format", "onnx", "--quantize", "int8", "--out", "{tmp}"], "tflite only"),
    (["export", "dmtl_celeba", "--format", "tflite", "--out", "{tmp}/f/x"], "not a writable folder"),
])
def test_cli_prints_one_line_and_exits_2(tmp_path, capsys, argv, message):
    (tmp_path / "f").write_text("x")
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facezoo export: error:") and message in err[0]


def test_an_empty_calibration_folder_is_a_user_error(tmp_path):
    from facezoo.export import calibration_inputs
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(UsageError, match="no calibration images"):
        calibration_inputs(None, str(tmp_path))
