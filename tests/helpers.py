"""Test helpers shared across test modules: tiny models, packaged model folders, data paths."""
from __future__ import annotations

import os
import runpy
import sys

import numpy as np

from facezoo import attributes as A
from facezoo.models.dmtl import DmtlConfig, HeadSpec, dmtl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ROOT = os.environ.get("FACEZOO_DATA", os.path.join(REPO, "..", "shared", "data"))


def data_dir(name: str) -> str | None:
    """``../shared/data/<name>`` if present, else None (tests then skip)."""
    path = os.path.join(DATA_ROOT, name)
    return path if os.path.isdir(path) else None


def tiny_config(datasets=None, input_size=(40, 32), **kwargs) -> DmtlConfig:
    """A DMTL config small enough for unit tests (ResNet-18 at width 0.125)."""
    datasets = datasets or {
        "celeba": A.CELEBA_40,
        "utkface": [HeadSpec(A.UTKFACE["age"], tolerance=5), A.UTKFACE["gender"], A.UTKFACE["race"]],
    }
    return DmtlConfig(backbone="resnet18", input_size=input_size, width=0.125, datasets=datasets,
                      branch_units=16, local_channels=4, **kwargs)


def tiny_model(**kwargs):
    return dmtl(tiny_config(**kwargs))


def random_images(n, size=(40, 32), seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, *size, 3)).astype("float32")


def package_tiny(out_dir, name="tiny_model", datasets=None, input_size=(40, 32)):
    """A packaged (model.keras + card.json) tiny model in ``out_dir``; returns its card."""
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.zoo import ModelCard
    from facezoo.zoo.package import package_model
    model = tiny_model(datasets=datasets, input_size=input_size)
    src = os.path.join(out_dir, "src.keras")
    model.save(src)
    card = ModelCard(
        name=name, task="attributes", description="tiny random model for tests",
        architecture={"backbone": "resnet18", "width": 0.125}, preprocessing=PreprocessSpec(input_size).to_dict(),
        label_spaces=[], training_data={"dataset": "celeba"}, split="none",
        license="test only", headline="mean_accuracy",
        metrics={"val": {"celeba": {"mean_accuracy": 0.5}}})
    folder = os.path.join(out_dir, name)
    package_model(src, folder, card)
    os.remove(src)
    return folder, card


def run_recipe(name, args) -> int:
    """Runs ``recipes/<name>`` as ``python recipes/<name> ARGS`` would, in this process; returns its exit status."""
    argv = sys.argv
    sys.argv = [name] + list(args)
    try:
        runpy.run_path(os.path.join(REPO, "recipes", name), run_name="__main__")
    except SystemExit as e:
        return 0 if e.code is None else e.code
    finally:
        sys.argv = argv
    raise AssertionError(f"recipes/{name} returned without exiting (recipes end with sys.exit(main()))")
