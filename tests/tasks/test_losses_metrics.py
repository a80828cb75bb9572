"""Masked losses, CORAL targets, the self-evaluation target and the metrics, on hand-computed cases."""
import math

import numpy as np
import pytest
import tensorflow as tf

from facezoo.attributes import ADIENCE, GENDER, Attribute
from facezoo.tasks import losses, metrics

AGE = ADIENCE["age_group"]  # ordinal, 8 groups, values = group mid-points
SMILE = Attribute("smile", "binary", "holistic")


def softplus(x):
    return math.log1p(math.exp(x))


def coral_logits(ranks, num_classes, big=20.0):
    """CORAL logits that decode to ``ranks`` with near-certainty."""
    return np.array([[big] * r + [-big] * (num_classes - 1 - r) for r in ranks], np.float32)


# ---------------------------------------------------------------------------- losses
def test_binary_and_nominal_losses_match_hand_values():
    np.testing.assert_allclose(losses.binary_loss([1.0, 0.0], [[0.0], [2.0]]), [math.log(2), softplus(2.0)],
                               rtol=1e-6)
    logits = np.log(np.array([[0.5, 0.25, 0.25]], np.float32))
    np.testing.assert_allclose(losses.nominal_loss([1], logits), [math.log(4)], rtol=1e-6)
    # A masked row may carry -1; it must not break the op (the mask removes it).
    assert np.isfinite(losses.nominal_loss([-1], logits).numpy()).all()


def test_coral_levels_and_loss():
    np.testing.assert_array_equal(losses.ordinal_levels([0, 2, 3], 4),
                                  [[0, 0, 0], [1, 1, 0], [1, 1, 1]])
    logits = np.array([[1.0, -0.5, 2.0]], np.float32)
    # label 2 of 4: targets (1, 1, 0) -> mean of softplus(-1), softplus(0.5), softplus(2).
    expected = (softplus(-1.0) + softplus(0.5) + softplus(2.0)) / 3
    np.testing.assert_allclose(losses.ordinal_loss([2], logits, 4), [expected], rtol=1e-6)
    np.testing.assert_allclose(losses.head_loss(AGE, [3], np.zeros((1, 7), np.float32)), [math.log(2)], rtol=1e-6)


@pytest.mark.parametrize("attribute, logits", [
    (SMILE, np.array([[0.3], [-1.2], [2.0]], np.float32)),
    (GENDER, np.array([[0.1, 0.4], [1.0, -1.0], [0.0, 0.0]], np.float32)),
    (AGE, coral_logits([1, 4, 6], 8) * 0.1),
])
def test_masked_label_changes_nothing(attribute, logits):
    mask = np.array([1.0, 0.0, 1.0], np.float32)
    dtype = np.float32 if attribute.kind == "binary" else np.int32
    labels = np.array([1, 1, 0], dtype)
    changed = labels.copy()
    changed[1] = 0 if attribute.kind != "ordinal" else 7
    base = losses.masked_sum(losses.head_loss(attribute, labels, logits), mask)
    assert float(losses.masked_sum(losses.head_loss(attribute, changed, logits), mask)) == float(base)
    changed_present = labels.copy()
    changed_present[0] = 0
    assert float(losses.masked_sum(losses.head_loss(attribute, changed_present, logits), mask)) != float(base)


def test_confidence_target_counts_predictions_within_tolerance():
    logits = coral_logits([3, 3, 3], 8)
    labels = [3, 2, 1]
    np.testing.assert_array_equal(losses.confidence_target(AGE, labels, logits), [1, 0, 0])
    np.testing.assert_array_equal(losses.confidence_target(AGE, labels, logits, tolerance=1), [1, 1, 0])
    np.testing.assert_array_equal(losses.confidence_target(SMILE, [1, 0], [[0.5], [0.5]]), [1, 0])
    # The self-evaluation loss trains the confidence logit towards that target and nothing else.
    conf = tf.Variable([[0.0], [0.0], [0.0]])
    head = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(head)
        loss = tf.reduce_sum(losses.confidence_loss(AGE, labels, head, conf, tolerance=1))
    grad_conf, grad_head = tape.gradient(loss, [conf, head])
    np.testing.assert_allclose(tf.reshape(grad_conf, [-1]), [-0.5, -0.5, 0.5])
    assert grad_head is None or not np.any(grad_head)


# ---------------------------------------------------------------------------- metrics
def test_confusion_balanced_accuracy_and_macro_f1():
    y, pred = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 1]
    cm = metrics.confusion_matrix(y, pred, 3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 2, 0], [0, 1, 0]])
    assert metrics.balanced_accuracy(cm) == pytest.approx((2 / 3 + 1 + 0) / 3)
    # F1: class 0 p=1 r=2/3 -> 0.8; class 1 p=1/2 r=1 -> 2/3; class 2 -> 0.
    assert metrics.macro_f1(cm) == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    # Binary: F1 of the positive class (tp 2, fp 1, fn 1).
    assert metrics.macro_f1(metrics.confusion_matrix([1, 1, 1, 0], [1, 1, 0, 1], 2)) == pytest.approx(2 / 3)
    # Classes absent from the labels are left out of the balanced accuracy.
    assert metrics.balanced_accuracy(metrics.confusion_matrix([0, 0], [0, 1], 3)) == pytest.approx(0.5)


def test_ordinal_head_metrics_mae_one_off_and_mask():
    y = np.array([0, 3, 5, 7, 2])
    logits = coral_logits([0, 4, 5, 5, 7], 8)
    mask = np.array([1, 1, 1, 1, 0], np.float32)  # the last example is wrong but unlabelled
    m = metrics.head_metrics(AGE, logits, y, mask)
    values = AGE.values
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx((abs(values[4] - values[3]) + abs(values[5] - values[7])) / 4, abs=1e-5)
    assert m["one_off_accuracy"] == pytest.approx(0.75)
    assert m["majority_baseline"] == pytest.approx(0.25)
    assert np.asarray(m["confusion_matrix"]).sum() == 4


def test_nominal_head_metrics_and_selective_accuracy():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]], np.float32)
    y = np.array([0, 0, 0, 1])  # right, wrong, right, wrong
    m = metrics.head_metrics(GENDER, logits, y, confidence=np.array([0.9, 0.2, 0.8, 0.1]))
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["majority_baseline"] == pytest.approx(0.75)
    assert m["coverage"] == pytest.approx(0.5)
    assert m["selective_accuracy"] == pytest.approx(1.0)
    assert m["confidence_auc"] == pytest.approx(1.0)
    assert metrics.head_metrics(GENDER, logits, y, mask=np.zeros(4)) == {"n": 0}


def test_summarize_means_over_heads_with_labels():
    s = metrics.summarize({"a": {"n": 2, "accuracy": 1.0, "balanced_accuracy": 1.0, "majority_baseline": 0.5,
                                 "f1": 1.0},
                           "b": {"n": 2, "accuracy": 0.5, "balanced_accuracy": 0.25, "majority_baseline": 0.5,
                                 "f1": 0.0},
                           "c": {"n": 0}})
    assert s == {"mean_accuracy": 0.75, "mean_balanced_accuracy": 0.625, "mean_majority_baseline": 0.5,
                 "mean_f1": 0.5}
