"""Registry contracts: dispatch by card task, every file on the card, broken cards named, lazy sub-modules."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import facezoo
from facezoo import zoo
from facezoo.errors import ModelFileError, UserError
from facezoo.files import sha256_of
from facezoo.inference.face_model import FaceModel
from tests.helpers import REPO, package_tiny


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return package_tiny(str(tmp_path_factory.mktemp("exported")))


def _copy(folder, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def _edit_card(folder, **changes):
    path = os.path.join(folder, zoo.CARD_FILE)
    with open(path) as f:
        data = json.load(f)
    data.update(changes)
    with open(path, "w") as f:
        json.dump(data, f)


def test_load_dispatches_on_the_card_task(packaged, tmp_path, monkeypatch):
    folder, card = packaged
    assert card.task == "attributes"
    assert isinstance(zoo.load(card.name, directory=folder), FaceModel)
    other = _copy(folder, tmp_path)
    _edit_card(other, task="toy")
    with pytest.raises(ModelFileError, match="task 'toy' has no runtime"):
        zoo.load(card.name, directory=str(other))
    monkeypatch.setitem(zoo.TASKS, "toy", "tests.zoo.test_registry:ToyRuntime")
    runtime = zoo.load(card.name, directory=str(other))
    assert isinstance(runtime, ToyRuntime) and runtime.card.task == "toy"


class ToyRuntime:
    def __init__(self, path, card):
        self.path, self.card = path, card


def test_card_lists_every_file_with_its_sha256(packaged, tmp_path):
    folder, card = packaged
    assert set(card.files) == set(os.listdir(folder)) - {zoo.CARD_FILE}
    assert all(sha256_of(os.path.join(folder, n)) == h for n, h in card.files.items())
    for name in zoo.list_models():  # the shipped models too
        shipped = zoo.model_card(name)
        folder = zoo.model_dir(name)
        assert set(shipped.files) == set(os.listdir(folder)) - {zoo.CARD_FILE}, name
        assert all(sha256_of(os.path.join(folder, n)) == h for n, h in shipped.files.items()), name


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "card.json").write_text("{not json"), "not readable JSON"),
    (lambda d: (d / "card.json").unlink(), "model card is missing"),
    (lambda d: _edit_card(d, format_version=99), "card format version 99"),
    (lambda d: _edit_card(d, preprocessing={"input_size": [0, 4]}), "bad preprocessing spec"),
    (lambda d: (d / "model.keras").unlink(), "weights file .* is missing"),
])
def test_every_broken_folder_is_one_error_naming_the_file(packaged, tmp_path, damage, message):
    folder, card = packaged
    broken = _copy(folder, tmp_path)
    damage(broken)
    with pytest.raises(ModelFileError, match=message) as e:
        zoo.load(card.name, directory=str(broken))
    assert isinstance(e.value, UserError) and str(broken) in str(e.value)


def test_a_file_that_passes_its_checksum_but_is_no_zip_is_named(packaged, tmp_path):
    folder, card = packaged
    broken = _copy(folder, tmp_path)
    (broken / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    _edit_card(broken, sha256=sha256_of(broken / "model.keras"), size_bytes=os.path.getsize(broken / "model.keras"))
    with pytest.raises(ModelFileError, match="matches its checksum but cannot be loaded"):
        zoo.load(card.name, directory=str(broken))


def test_models_import_without_importing_zoo():
    """No module imports upward: building backbones never needs the shipped-model registry."""
    code = ("import sys; import facezoo.models, facezoo.tasks.dmtl, facezoo.evaluation.report; "
            "print('facezoo.train.loop' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # evaluation does not pull in the training loop


def test_lazy_submodules_and_cheap_import():
    assert facezoo.models.resnet18.__name__ == "resnet18"
    assert "models" in dir(facezoo)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        facezoo.nope  # noqa: B018
    code = "import sys, facezoo; facezoo.list_models(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("call", [
    "import facezoo; facezoo.load('dmtl_celeba', backend='keras')",
    "from facezoo import cli; raise SystemExit(cli.main(['predict', cli.__file__, '--model', 'dmtl_celeba', "
    "'--backend', 'keras']))",
])
def test_without_tensorflow_the_error_says_which_extra_to_install(call):
    """The keras backend needs TensorFlow (the exported backends do not: tests/backends/test_no_tensorflow.py)."""
    blocked = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; " + call
    out = subprocess.run([sys.executable, "-c", blocked], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert 'pip install "facezoo[cpu]"' in out.stderr + out.stdout
    if "cli" in call:
        assert out.returncode == 2 and "Traceback" not in out.stderr
