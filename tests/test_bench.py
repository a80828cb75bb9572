"""facezoo bench: one run over backends and precisions, table + JSON; bad flags are one-line errors."""
import json

import pytest

from facezoo import cli

pytest.importorskip("onnxruntime")

TINY = ["--repeats", "2", "--runs", "3", "--batch", "4", "--batch-runs", "1", "--pause", "0", "--gemm", "64",
        "--sample", "8"]


def test_bench_measures_every_precision_side_by_side(tmp_path, capsys):
    out = tmp_path / "bench.json"
    # dmtl_utkface: its validation images are read as staged; expression_fer's are re-framed by the detector first,
    # which on a fresh machine (no crop cache) detects all 32k FER-2013 faces to sample 8 (261 s of a CI run).
    assert cli.main(["bench", "dmtl_utkface", "--backends", "onnxruntime", *TINY, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [(r["backend"], r["precision"]) for r in report["results"]] == [("onnxruntime", "fp32"),
                                                                          ("onnxruntime", "int8")]
    assert len(report["sgemm_gflops"]["values"]) == 2 and report["sgemm_gflops"]["min"] > 0
    for r in report["results"]:
        assert len(r["p50_ms"]["values"]) == 2 and r["p50_ms"]["min"] <= r["p50_ms"]["median"] <= r["p50_ms"]["max"]
        assert r["p90_ms"]["median"] >= r["p50_ms"]["median"] > 0
        assert r["img_per_s"]["median"] > 0 and r["gflops"]["median"] > 0
        assert r["size_mb"] > 1 and r["file"].endswith(".onnx")
        assert len(r["cold_start_parts"]) == 2 and r["cold_start_parts"][0]["tensorflow_imported"] is False
        assert r["cold_start_s"]["median"] > r["cold_start_parts"][0]["first_predict_s"]
    assert report["results"][1]["size_mb"] < report["results"][0]["size_mb"] / 2  # int8 weights
    assert "onnxruntime  int8" in table and "SGEMM peak" in table
    if report["results"][0].get("accuracy"):  # the UTKFace validation split is staged
        assert report["results"][0]["accuracy"]["decisions_kept"] == 1.0
        assert 0.5 < report["results"][1]["accuracy"]["decisions_kept"] <= 1.0


@pytest.mark.parametrize("argv,message", [
    (["bench", "no_such_model"], "Unknown model 'no_such_model'"),
    (["bench", "retinaface_mnet025"], "measures attribute and expression models"),
    (["bench", "dmtl_celeba", "--backends", "tensorrt"], "unknown backend 'tensorrt'"),
    (["bench", "dmtl_celeba", "--precisions", "int4"], "unknown precision 'int4'"),
    (["bench", "dmtl_celeba", "--pause", "-1"], "--pause must be >= 0"),
    (["bench", "dmtl_celeba", "--json", "/no/such/folder/x.json"], "does not exist"),
])
def test_bad_bench_flags_are_one_line_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("facezoo bench: error:")


def test_bench_rejects_a_non_positive_repeat_count(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "dmtl_celeba", "--repeats", "0"])
    assert e.value.code == 2
