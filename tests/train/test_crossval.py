"""k-fold cross-validation: the loop, mean ± std, the table, resumable files, manifest joining."""
import json

import numpy as np
import pytest

from facezoo.data.records import FaceRecord
from facezoo.train import crossval


def test_cross_validate_holds_out_each_fold_and_summarises(tmp_path):
    calls = []
    scores = {"fold_0": 0.8, "fold_1": 0.6, "fold_2": 0.7}

    def train_fold(held_out, training, fold_dir):
        calls.append((held_out, training, fold_dir))
        return {"gender/accuracy": scores[held_out], "age_group/mae": 10 * scores[held_out]}

    summary = crossval.cross_validate(list(scores), train_fold, tmp_path, verbose=False)
    assert [(h, t) for h, t, _ in calls] == [("fold_0", ["fold_1", "fold_2"]), ("fold_1", ["fold_0", "fold_2"]),
                                             ("fold_2", ["fold_0", "fold_1"])]
    acc = summary["metrics"]["gender/accuracy"]
    assert acc["mean"] == pytest.approx(0.7)
    assert acc["std"] == pytest.approx(np.std([0.8, 0.6, 0.7], ddof=1))
    assert acc["n"] == 3
    assert summary["metrics"]["age_group/mae"]["mean"] == pytest.approx(7.0)
    assert json.loads((tmp_path / "crossval.json").read_text()) == summary
    assert json.loads((tmp_path / "fold_1" / "metrics.json").read_text())["gender/accuracy"] == 0.6
    table = (tmp_path / "crossval.md").read_text()
    assert "| gender/accuracy | 0.7000 ± 0.1000 | 0.8000 | 0.6000 | 0.7000 |" in table


def test_held_out_subset_still_trains_on_all_other_folds(tmp_path):
    calls = []
    crossval.cross_validate(["a", "b", "c"], lambda h, t, d: calls.append((h, t)) or {"m": 1.0}, tmp_path,
                            held_out=["b"], verbose=False)
    assert calls == [("b", ["a", "c"])]
    with pytest.raises(ValueError, match="held_out must be some of"):
        crossval.cross_validate(["a", "b"], lambda *a: {}, tmp_path, held_out=["z"])


def test_summary_of_a_metric_missing_from_a_fold_and_of_one_value():
    summary = crossval.summarize_folds({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 3.0}})
    assert summary["metrics"]["x"] == {"mean": 2.0, "std": pytest.approx(np.sqrt(2)), "n": 2}
    assert summary["metrics"]["y"] == {"mean": 2.0, "std": 0.0, "n": 1}
    assert "| y | 2.0000 ± 0.0000 | 2.0000 |  |" in crossval.markdown_table(summary)


def test_cross_validate_needs_two_distinct_folds(tmp_path):
    with pytest.raises(ValueError, match="at least 2 distinct folds"):
        crossval.cross_validate(["fold_0"], lambda *a: {}, tmp_path)
    with pytest.raises(ValueError, match="at least 2 distinct folds"):
        crossval.cross_validate(["fold_0", "fold_0"], lambda *a: {}, tmp_path)


def test_fold_names_and_join_splits():
    records = [FaceRecord("a.jpg", {}, split=s) for s in ("fold_1", "fold_0", "fold_1")]
    assert crossval.fold_names(records) == ["fold_0", "fold_1"]
    manifest = {"directory": "/x", "splits": {
        "fold_0": {"count": 3, "shards": [{"file": "f0-0"}, {"file": "f0-1"}]},
        "fold_1": {"count": 2, "shards": [{"file": "f1-0"}]},
        "fold_2": {"count": 4, "shards": [{"file": "f2-0"}]}}}
    joined = crossval.join_splits(manifest, ["fold_0", "fold_2"], "train")
    assert joined["splits"]["train"] == {"count": 7, "shards": [{"file": "f0-0"}, {"file": "f0-1"}, {"file": "f2-0"}]}
    assert "train" not in manifest["splits"]
    with pytest.raises(ValueError, match="fold_9"):
        crossval.join_splits(manifest, ["fold_9"], "train")


def test_flat_metrics_keeps_summary_means_and_per_head_metrics():
    evaluation = {
        "summary": {"adience": {"mean_accuracy": 0.5, "age_group_accuracy": 0.4, "age_group_mae": 9.0}},
        "heads": {"adience__age_group": {"n": 4, "accuracy": 0.4, "mae": 9.0, "one_off_accuracy": 0.8,
                                         "confusion_matrix": [[1]]},
                  "adience__gender": {"n": 0},
                  "other__gender": {"n": 3, "accuracy": 1.0}}}
    assert crossval.flat_metrics(evaluation, "adience") == {
        "mean_accuracy": 0.5, "age_group/accuracy": 0.4, "age_group/mae": 9.0, "age_group/one_off_accuracy": 0.8}
