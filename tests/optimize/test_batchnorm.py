"""BatchNormalization re-estimation (AdaBN) for one data set's branch of a joint model."""
import keras
import numpy as np
import pytest

from facezoo.optimize.batchnorm import batchnorm_layers, recalibrate_batchnorm
from tests.helpers import random_images, tiny_model


def _bn_model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3, name="d")(inputs)
    outputs = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    return keras.Model(inputs, outputs)


def test_moving_statistics_become_the_plain_mean_over_batches():
    model = _bn_model()
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i, scale=1 + i, size=(16, 3)).astype("float32") for i in range(5)]
    kernel_before = [w.numpy().copy() for w in model.trainable_weights]
    assert recalibrate_batchnorm(model, batches) == 5
    bn = model.get_layer("bn")
    dense = [b @ model.get_layer("d").kernel.numpy() + model.get_layer("d").bias.numpy() for b in batches]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([d.mean(0) for d in dense], 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([d.var(0) for d in dense], 0), rtol=1e-4)
    assert bn.momentum == 0.9
    for a, b in zip(kernel_before, model.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_max_batches_and_tuples_from_a_pipeline():
    model = _bn_model()
    batches = [(np.full((4, 3), float(i), "float32"), {"label": np.zeros(4)}) for i in range(10)]
    assert recalibrate_batchnorm(model, batches, max_batches=3) == 3
    kernel, bias = model.get_layer("d").kernel.numpy(), model.get_layer("d").bias.numpy()
    expected = np.mean([np.full(3, float(i)) @ kernel + bias for i in range(3)], 0)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_reaches_nested_layers_of_a_dmtl_model():
    model = tiny_model()
    layers = batchnorm_layers(model)
    assert len(layers) > 10
    x = random_images(4)
    before = model(x, training=False)
    recalibrate_batchnorm(model, [random_images(4, seed=s) * 0.5 for s in range(3)])
    after = model(x, training=False)
    assert any(not np.allclose(before[k], after[k]) for k in before)


def test_no_batches_or_no_batchnorm_is_an_error_and_changes_nothing():
    model = _bn_model()
    mean = model.get_layer("bn").moving_mean.numpy().copy()
    with pytest.raises(ValueError, match="no batch"):
        recalibrate_batchnorm(model, [])
    np.testing.assert_array_equal(model.get_layer("bn").moving_mean.numpy(), mean)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        recalibrate_batchnorm(plain, [np.zeros((2, 3), "float32")])
