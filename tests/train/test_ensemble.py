"""Ensembles: majority and accuracy-weighted voting on hand cases; feature concatenation on tiny models."""
import numpy as np
import pytest

from facezoo.attributes import GENDER
from facezoo.models.dmtl import dmtl
from facezoo.train import ensemble
from tests.train.synthetic import synthetic_dataset, tiny_config


def one_hot_probabilities(votes, k=2, confidence=0.9):
    votes = np.asarray(votes)
    p = np.full(votes.shape + (k,), (1 - confidence) / (k - 1))
    np.put_along_axis(p, votes[..., None], confidence, axis=-1)
    return p


def test_majority_vote_and_ties_by_mean_probability():
    votes = np.array([[0, 1, 1, 0], [0, 1, 0, 1], [1, 1, 0, 1]])
    probs = one_hot_probabilities(votes)
    np.testing.assert_array_equal(ensemble.weighted_vote(votes, probs), [0, 1, 0, 1])
    # Two members disagree: the more confident one wins the tie.
    votes2 = np.array([[0], [1]])
    probs2 = np.array([[[0.6, 0.4]], [[0.1, 0.9]]])
    np.testing.assert_array_equal(ensemble.weighted_vote(votes2, probs2), [1])


def test_weighted_vote_uses_validation_accuracy():
    votes = np.array([[0, 0], [1, 0], [1, 1]])
    probs = one_hot_probabilities(votes)
    weights = ensemble.accuracy_weights([0.9, 0.3, 0.3])
    np.testing.assert_allclose(weights, [0.6, 0.2, 0.2])
    # Plain majority says class 1 for the first example; the accurate member outweighs the two others.
    np.testing.assert_array_equal(ensemble.combine("vote", _outputs(votes, probs)), [1, 0])
    np.testing.assert_array_equal(ensemble.combine("weighted_vote", _outputs(votes, probs), weights=weights), [0, 0])
    with pytest.raises(ValueError, match="needs weights"):
        ensemble.combine("weighted_vote", _outputs(votes, probs))
    with pytest.raises(ValueError, match="unknown ensemble method 'mean'"):
        ensemble.combine("mean", _outputs(votes, probs))
    with pytest.raises(ValueError, match="positive sum"):
        ensemble.accuracy_weights([0.0, 0.0])


def _outputs(votes, probs):
    n = votes.shape[1]
    return ensemble.MemberOutputs(probs, votes, [np.zeros((n, 1))] * len(votes), np.zeros(n, np.int64), np.ones(n))


def test_feature_concatenation_on_tiny_models():
    config = tiny_config(heads=[GENDER])
    members = [dmtl(config), dmtl(config)]
    data = synthetic_dataset(config, n=24, batch=8, repeat=False)
    out = ensemble.member_outputs(members, data, "main__gender")
    assert out.probabilities.shape == (2, 24, 2) and out.votes.shape == (2, 24)
    assert [f.shape for f in out.features] == [(24, 64), (24, 64)]
    expected = np.concatenate([labels["main__gender"].numpy() for _, labels, _ in data])
    np.testing.assert_array_equal(out.labels, expected)
    np.testing.assert_allclose(ensemble.member_accuracies(out),
                               [np.mean(v == expected) for v in out.votes])
    head = ensemble.train_concat_head(out.features, out.labels, out.mask, num_classes=2, epochs=150)
    predicted = ensemble.combine("feature_concat", out, head=head)
    # The head learns its 24 training examples from the concatenated 128 features.
    assert ensemble.accuracy(predicted, out.labels) >= 0.9
    with pytest.raises(ValueError, match="has no head 'main__age'"):
        ensemble.member_outputs(members, data, "main__age")
