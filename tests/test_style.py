"""Neural style transfer: Gram matrices, costs that the optimisation lowers, the recipe."""
import json

import numpy as np
import pytest
import tensorflow as tf

from facezoo import style
from facezoo.errors import UsageError
from tests.helpers import run_recipe, tiny_model


def test_gram_matrix_is_channel_correlation_over_positions():
    f = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    flat = f.reshape(2, 12, 5)
    expected = np.einsum("bpi,bpj->bij", flat, flat) / 12
    np.testing.assert_allclose(style.gram_matrix(tf.constant(f)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_style_cost_is_zero_for_the_same_texture_shuffled_in_space():
    f = np.random.default_rng(1).standard_normal((1, 4, 4, 3)).astype(np.float32)
    shuffled = f.reshape(16, 3)[np.random.default_rng(2).permutation(16)].reshape(1, 4, 4, 3)
    grams = [style.gram_matrix(tf.constant(f))]
    assert float(style.style_cost(grams, [tf.constant(shuffled)])) == pytest.approx(0.0, abs=1e-6)
    assert float(style.content_cost(tf.constant(f), tf.constant(shuffled))) > 0.1  # content sees the move


@pytest.fixture(scope="module")
def tiny_features():
    return style.StyleFeatures(tiny_model(), content_layer="conv4_block2_out",
                               style_layers=("conv1_conv", "conv2_block1_1_conv", "conv3_block1_1_conv"))


def _images():
    rng = np.random.default_rng(0)
    content = tf.image.resize(rng.integers(0, 256, (1, 6, 6, 3)).astype(np.float32), (32, 32)).numpy()[0]
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::4] = (230, 40, 40)
    stripes[:, 1::4] = (20, 20, 200)
    return content.astype(np.uint8), stripes


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimisation_from_noise_lowers_both_content_and_style_costs(tiny_features, optimizer):
    content, stripes = _images()
    result = style.transfer(content, stripes, features=tiny_features, steps=15, size=32, optimizer=optimizer,
                            noise_ratio=1.0, variation_weight=0.0, style_weight=10.0, learning_rate=0.05)
    first, last = result.history[0], result.history[-1]
    assert len(result.history) == 16 and result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert last["content"] < 0.8 * first["content"]
    assert last["style"] < 0.8 * first["style"]


def test_transfer_rejects_bad_settings_and_unknown_layers(tiny_features):
    content, stripes = _images()
    with pytest.raises(UsageError, match="optimizer"):
        style.transfer(content, stripes, features=tiny_features, optimizer="sgd")
    with pytest.raises(UsageError, match="noise_ratio"):
        style.transfer(content, stripes, features=tiny_features, noise_ratio=2.0)
    with pytest.raises(UsageError, match="no layer"):
        style.StyleFeatures(tiny_model(), style_layers=("block9_conv",))


def test_procedural_style_is_ours_deterministic_and_textured():
    a, b = style.procedural_style(64, seed=3), style.procedural_style(64, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and a.std() > 40


def test_recipe_writes_png_and_costs_and_names_bad_options(tmp_path, capsys):
    out = tmp_path / "styled.png"
    assert run_recipe("style_transfer.py", ["--steps", "2", "--size", "32", "--out", str(out), "--side-by-side"]) == 0
    costs = json.loads((tmp_path / "styled.costs.json").read_text())
    assert [r["step"] for r in costs["history"]] == [0, 1, 2] and (tmp_path / "styled.compare.png").exists()
    assert costs["history"][-1]["total"] < costs["history"][0]["total"]
    assert run_recipe("style_transfer.py", ["--help"]) == 0
    assert "--style" in capsys.readouterr().out
    for args, message in ((["--out", str(tmp_path / "x.jpg")], "PNG"), (["--content", "nope.jpg"], "no such file")):
        assert run_recipe("style_transfer.py", args) == 2
        assert message in capsys.readouterr().err
