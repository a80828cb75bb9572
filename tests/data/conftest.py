"""Fixtures of the data tests (synthetic images come from ``write_jpeg`` in ``tests/conftest.py``)."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def shared_data():
    """Returns ``folder(name)``: the staged data set ``name`` under ``$FACEZOO_DATA`` (default
    ``<repo>/../shared/data``), skipping the test when it is absent."""
    root = pathlib.Path(os.environ.get("FACEZOO_DATA", REPO.parent / "shared" / "data"))

    def folder(name):
        path = root / name
        if not path.is_dir():
            pytest.skip(f"real data set {path} is absent")
        return path
    return folder
