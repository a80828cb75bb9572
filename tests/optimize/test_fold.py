"""BatchNormalization folding: same outputs, no foldable BatchNormalization left, unfoldable ones kept."""
import keras
import numpy as np
import pytest

from facezoo.optimize import fold_batch_norm, foldable_pairs
from tests.helpers import random_images, tiny_model


def _randomise_batchnorm(model, seed=0):
    """Trained-looking statistics (fresh layers are the identity, which would hide a wrong fold)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, n))
    return model


def _max_diff(a, b, x):
    ya, yb = a(x, training=False), b(x, training=False)
    if isinstance(ya, dict):
        return max(float(np.abs(ya[k].numpy() - yb[k].numpy()).max()) for k in ya)
    return float(np.abs(np.asarray(ya) - np.asarray(yb)).max())


def _batchnorms(model):
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_tiny_dmtl_model_folds_every_batchnorm_and_keeps_its_outputs():
    model = _randomise_batchnorm(tiny_model())
    pairs = dict(foldable_pairs(model))
    assert pairs["conv1_conv"] == "conv1_bn" and pairs["celeba_local_nominal_fc"] == "celeba_local_nominal_bn"
    assert len(pairs) == len(_batchnorms(model))
    folded = fold_batch_norm(model)
    assert _batchnorms(folded) == []
    assert folded.get_layer("conv1_conv").use_bias and not model.get_layer("conv1_conv").use_bias
    assert folded.dmtl_config == model.dmtl_config
    assert set(folded.output) == set(model.output)
    assert _max_diff(model, folded, random_images(4)) <= 1e-4
    # The original is untouched and the copy does not share its variables.
    assert not model.get_layer("conv1_conv").use_bias and "conv1_bn" in _batchnorms(model)
    folded.get_layer("trunk_pool")  # names are kept
    assert not {id(v) for v in folded.weights} & {id(v) for v in model.weights}


@pytest.mark.slow
def test_shipped_model_folds_to_the_same_outputs_on_a_real_face():
    import facezoo
    from facezoo.images import load_image
    fm = facezoo.load("dmtl_celeba", backend="keras")
    x = fm.preprocess(load_image(facezoo.sample_image()))[None]
    folded = fold_batch_norm(fm.model)
    assert _batchnorms(folded) == []
    assert _max_diff(fm.model, folded, x) <= 1e-4


def test_conv_with_bias_depthwise_and_plain_batchnorm_variants_fold():
    inputs = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=True, name="a_conv")(inputs)
    x = keras.layers.BatchNormalization(center=False, name="a_bn")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="b_conv")(x)
    x = keras.layers.BatchNormalization(scale=False, name="b_bn")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5, name="c_fc")(x)
    outputs = keras.layers.BatchNormalization(epsilon=0.1, name="c_bn")(x)
    model = _randomise_batchnorm(keras.Model(inputs, outputs), seed=1)
    folded = fold_batch_norm(model)
    assert _batchnorms(folded) == []
    x = np.random.default_rng(2).normal(size=(3, 9, 9, 3)).astype("float32")
    assert _max_diff(model, folded, x) <= 1e-5


def test_batchnorms_that_cannot_be_folded_stay():
    inputs = keras.Input((6, 6, 2))
    shared = keras.layers.Conv2D(3, 1, name="shared_conv")(inputs)  # read by the BN and by the add
    x = keras.layers.BatchNormalization(name="shared_bn")(shared)
    x = keras.layers.Add(name="add")([x, shared])
    x = keras.layers.BatchNormalization(name="after_add_bn")(x)  # no producing conv
    x = keras.layers.Conv2D(3, 1, activation="relu", name="relu_conv")(x)
    x = keras.layers.BatchNormalization(name="after_relu_bn")(x)  # the activation is in between
    x = keras.layers.Conv2D(3, 1, name="ok_conv")(x)
    outputs = keras.layers.BatchNormalization(name="ok_bn")(x)
    model = _randomise_batchnorm(keras.Model(inputs, outputs), seed=3)
    assert foldable_pairs(model) == [("ok_conv", "ok_bn")]
    folded = fold_batch_norm(model)
    assert _batchnorms(folded) == ["shared_bn", "after_add_bn", "after_relu_bn"]
    x = np.random.default_rng(4).normal(size=(2, 6, 6, 2)).astype("float32")
    assert _max_diff(model, folded, x) <= 1e-5


def test_a_subclassed_model_is_refused():
    class Plain(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        fold_batch_norm(Plain())


def test_keras_runtimes_run_a_folded_copy_unless_told_not_to():
    """``facezoo.load(..., backend="keras")`` predicts with the BatchNorm-folded network (same answers as the
    shipped one), keeps ``.model`` as shipped, and ``fold_batchnorm=False`` runs ``.model`` itself (wrapped for the
    flip test where the card asks for it)."""
    import facezoo
    from facezoo.errors import UsageError
    from facezoo.images import load_image

    from facezoo.optimize.flip import flip_test_network

    fm = facezoo.load("expression_fer", backend="keras", flip_test=False)
    assert fm.inference_model is not fm.model and not _batchnorms(fm.inference_model) and _batchnorms(fm.model)
    unfolded = facezoo.load("expression_fer", backend="keras", fold_batchnorm=False, flip_test=False)
    assert unfolded.inference_model is unfolded.model
    x = fm.preprocess(load_image(facezoo.sample_image()))[None]
    assert _max_diff(fm.inference_model, fm.model, x) < 1e-4
    assert fm.predict(facezoo.sample_image())["attributes"] == unfolded.predict(facezoo.sample_image())["attributes"]
    # the shipped card runs the flip test: the folded network is wrapped for the mirror image, and unfolded,
    # .model itself is
    shipped = facezoo.load("expression_fer", backend="keras")
    inner = [layer for layer in shipped.inference_model.layers if isinstance(layer, keras.Model)]
    assert shipped.flip_test and len(inner) == 1 and not _batchnorms(inner[0]) and inner[0] is not shipped.model
    plain = facezoo.load("expression_fer", backend="keras", fold_batchnorm=False)
    assert plain.flip_test and plain.model in plain.inference_model.layers
    assert _max_diff(shipped.inference_model, flip_test_network(shipped.model), x) < 1e-4

    emb = facezoo.load("verify_face", backend="keras")
    assert not _batchnorms(emb.inference_model) and emb.inference_model is not emb.model
    # network() stays the cached graph call returning numpy (an attribute once shadowed it with the Keras model)
    assert isinstance(emb.network(emb.preprocess(load_image(facezoo.sample_image()))[None]), np.ndarray)
    crop = load_image(facezoo.sample_image())
    a = emb.embed([crop], detect=False)
    b = facezoo.load("verify_face", backend="keras", fold_batchnorm=False).embed([crop], detect=False)
    assert float(np.abs(np.asarray(a) - np.asarray(b)).max()) < 1e-4

    with pytest.raises(UsageError, match="fold_batchnorm"):
        facezoo.load("retinaface_mnet025", backend="keras", fold_batchnorm=True)
