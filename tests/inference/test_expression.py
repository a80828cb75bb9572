"""Expression models: the card task ``expression`` loads an ExpressionModel whose answers carry API scores."""
import os

import numpy as np
import pytest

from facezoo import attributes as A
from facezoo import zoo
from facezoo.inference.expression import API_KEYS, ExpressionModel, api_scores
from tests.helpers import tiny_config


def test_api_scores_fill_every_key_and_give_contempt_zero_for_fer():
    probs = dict(zip(A.FER_EXPRESSIONS, np.linspace(1, 7, 7) / 28))
    scores = api_scores(probs)
    assert tuple(scores) == API_KEYS and scores["contempt"] == 0.0
    assert scores["happiness"] == pytest.approx(probs["happy"]) and sum(scores.values()) == pytest.approx(1.0)
    ck = api_scores(dict(zip(A.CKPLUS_EXPRESSIONS, [1 / 7] * 7)))
    assert ck["contempt"] == pytest.approx(1 / 7) and ck["neutral"] == 0.0


@pytest.fixture(scope="module")
def grey_expression_model(tmp_path_factory):
    from facezoo.models.dmtl import dmtl
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.zoo.package import package_model
    root = tmp_path_factory.mktemp("exported")
    model = dmtl(tiny_config(datasets={"fer2013": A.FER2013}, input_size=(48, 48), channels=1))
    src = os.path.join(root, "src.keras")
    model.save(src)
    card = zoo.ModelCard(
        name="tiny_fer", task="expression", description="tiny grey expression model", architecture={},
        preprocessing=PreprocessSpec((48, 48), color="grey").to_dict(), label_spaces=[A.FER2013.to_dict()],
        training_data={"dataset": "fer2013"}, split="official", license="test only")
    folder = os.path.join(root, "tiny_fer")
    package_model(src, folder, card)
    return folder


def test_expression_card_loads_an_expression_model_on_grey_input(grey_expression_model):
    model = zoo.load("tiny_fer", directory=grey_expression_model)
    assert isinstance(model, ExpressionModel) and model.spec.input_shape == (48, 48, 1)
    rgb = np.random.default_rng(0).integers(0, 256, (60, 60, 3), dtype=np.uint8)
    result = model.predict(rgb, check_face=False)
    expression = result["attributes"]["expression"]
    assert set(expression["probabilities"]) == set(A.FER_EXPRESSIONS)
    assert tuple(expression["scores"]) == API_KEYS and expression["scores"]["contempt"] == 0.0
    assert sum(expression["scores"].values()) == pytest.approx(1.0, abs=1e-3)
