"""recipes/flip_card.py: validation chooses between plain and the flip test; the card is re-measured with the choice."""
import json
import os

import pytest

from facezoo.evaluation.report import evaluate
from facezoo.zoo import ModelCard
from tests.helpers import package_tiny, run_recipe


@pytest.mark.slow
def test_flip_card_chooses_on_validation_and_rewrites_the_card(tmp_path, celeba_layout, capsys):
    root, _names, _values = celeba_layout(n=30)
    exported = tmp_path / "exported"
    exported.mkdir()
    folder, _ = package_tiny(str(exported))
    path = os.path.join(folder, "card.json")
    card = json.load(open(path))
    card["evaluate_command"] = f"facezoo evaluate tiny_model --data-dir {root}"
    json.dump(card, open(path, "w"))
    args = ["--model", "tiny_model", "--exported", str(exported)]

    assert run_recipe("flip_card.py", args + ["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "validation chose:" in printed and json.load(open(path)) == card  # a dry run writes nothing

    assert run_recipe("flip_card.py", args) == 0
    after = ModelCard.from_json(path)
    plain = evaluate("tiny_model", str(root), directory=folder, plots=False, latency=False, flip_test=False)
    flip = evaluate("tiny_model", str(root), directory=folder, plots=False, latency=False, flip_test=True)
    chosen = flip["summary"]["mean_accuracy"] > plain["summary"]["mean_accuracy"]
    assert after.architecture["flip_test"] is chosen
    got = dict(after.metrics["val"]["celeba"])
    assert got.pop("batch1_latency_ms") > 0
    assert got == pytest.approx((flip if chosen else plain)["summary"])
    assert "Flip test: validation compared two named configurations" in after.notes
    assert f"{plain['summary']['mean_accuracy']:.4f} plain" in after.notes
    # The registry now follows the card's choice.
    from facezoo import load
    assert load("tiny_model", directory=folder, backend="keras").flip_test is chosen


def test_flip_card_names_a_missing_model(tmp_path, capsys):
    assert run_recipe("flip_card.py", ["--model", "no_such", "--exported", str(tmp_path)]) == 2
    assert "no_such" in capsys.readouterr().err
