"""GanTask and SrganTask under facezoo's loop: training, checkpoints, resuming, MirroredStrategy.

The MirroredStrategy runs (two logical CPU devices, which must be configured before TensorFlow
initialises) happen in one subprocess of ``gan_worker.py``, started with the module's first test,
while the one-device tests run here.
"""
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from facezoo.tasks.gan import GanTask, SrganTask, batch_condition
from facezoo.train.config import TrainConfig
from facezoo.train.loop import Trainer
from tests.tasks.gan_synthetic import CONDITIONS, pipeline_like, tiny_dcgan_config, tiny_srgan_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(REPO, "tests", "tasks", "gan_worker.py")
TIMEOUT_S = 600  # a guard against hangs only
BATCH, STEPS = 8, 2


@pytest.fixture(scope="module", autouse=True)
def mirrored_runs(tmp_path_factory):
    """Starts the worker (the GAN, then the SRGAN's adversarial phase, two epochs each) under
    MirroredStrategy; yields a function waiting for it and returning one task's result and folder."""
    out = tmp_path_factory.mktemp("gan-mirrored")
    log = open(out / "log.txt", "w")
    proc = subprocess.Popen([sys.executable, WORKER, "--mirrored", "--out", str(out), "--tasks", "gan", "srgan",
                             "--epochs", "2", "2", "--steps", str(STEPS), "--batch", str(BATCH)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def result(task):
        code = proc.wait(timeout=TIMEOUT_S)
        log.flush()
        assert code == 0, f"worker failed ({code}):\n{(out / 'log.txt').read_text()[-4000:]}"
        with open(out / task / "result.json") as f:
            return json.load(f), out / task

    yield result
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def _config(epochs):
    return TrainConfig(epochs=epochs, steps_per_epoch=STEPS, learning_rate=1e-3, reference_batch=BATCH,
                       weight_decay=0.0, schedule="constant")


def _trainer(task, out, epochs):
    return Trainer(task, pipeline_like(STEPS * BATCH, 16, BATCH), _config(epochs), out, global_batch=BATCH,
                   val_data={"val": pipeline_like(BATCH, 16, BATCH, seed=1, repeat=False)})


def test_gan_task_trains_checkpoints_and_resumes(tmp_path, mirrored_runs):
    samples = tmp_path / "samples"
    task = lambda: GanTask(tiny_dcgan_config(), samples_dir=samples, sample_columns=3,  # noqa: E731
                           steps_per_epoch=STEPS)
    first = _trainer(task(), tmp_path / "run", epochs=1)
    assert sorted(first.optimizers) == ["discriminator", "generator"]
    history = first.fit(verbose=False)
    assert [r["epoch"] for r in history] == [1]
    row = history[0]
    for key in ("loss", "d_loss", "g_loss", "d_x", "d_g_z", "val_d_x", "val_d_g_z"):
        assert np.isfinite(row[key]), key
    assert row["loss"] == pytest.approx(row["d_loss"] + row["g_loss"], rel=1e-5)
    assert 0 < row["d_x"] < 1 and 0 < row["val_d_g_z"] < 1
    assert os.listdir(samples) == ["epoch-001.png"]
    saved = keras.saving.load_model(tmp_path / "run" / "last.keras", safe_mode=True)

    # A new process would do the same: a fresh task and trainer on the same folder, one more epoch.
    second = _trainer(task(), tmp_path / "run", epochs=2)
    assert second.restore()
    assert int(second.step.numpy()) == STEPS
    assert int(second.optimizers["generator"].iterations.numpy()) == STEPS
    for a, b in zip(second.model.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    history = second.fit(verbose=False)
    assert [r["epoch"] for r in history] == [1, 2] and int(second.step.numpy()) == 2 * STEPS
    assert sorted(os.listdir(samples)) == ["epoch-001.png", "epoch-002.png"]
    from PIL import Image
    assert Image.open(samples / "epoch-002.png").size == (2 + 3 * 18, 2 + 3 * 18)  # 3×3 grid of 16 px


def test_conditional_batches_need_their_labels():
    images, labels, masks = next(iter(pipeline_like(BATCH, 16, BATCH)))
    condition = batch_condition((images, labels, masks), CONDITIONS)
    assert condition.shape == (BATCH, 2)
    np.testing.assert_array_equal(condition[:, 1], labels["Smiling"])
    with pytest.raises(ValueError, match="no labels"):
        batch_condition((images, labels, masks), ("Eyeglasses",))
    with pytest.raises(ValueError, match="pipeline"):
        batch_condition(images, CONDITIONS)


def test_srgan_task_pretrains_then_starts_the_adversarial_run_from_it(tmp_path):
    pretrain = _trainer(SrganTask(tiny_srgan_config(), phase="pretrain"), tmp_path / "pretrain", epochs=1)
    assert sorted(pretrain.optimizers) == ["generator"]
    (row,) = pretrain.fit(verbose=False)
    assert row["loss"] == row["pixel_loss"] and row["score"] == row["val_psnr"]  # best.keras by PSNR
    assert np.isfinite(row["val_bicubic_psnr"])
    best = keras.saving.load_model(tmp_path / "pretrain" / "best.keras", safe_mode=True)
    task = SrganTask(tiny_srgan_config(), phase="adversarial", init=tmp_path / "pretrain" / "best.keras")
    adversarial = _trainer(task, tmp_path / "adversarial", epochs=1)
    assert sorted(adversarial.optimizers) == ["discriminator", "generator"]
    assert adversarial.model.phase == "adversarial"
    for a, b in zip(adversarial.model.generator.get_weights(), best.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert task.score({"val_psnr": 30.0}) is None  # the adversarial run keeps its last model
    # A shipped generator alone (exported/srgan_face_x4/model.keras) starts it the same way.
    best.generator.save(tmp_path / "generator.keras")
    from_shipped = SrganTask(tiny_srgan_config(), phase="adversarial", init=tmp_path / "generator.keras").build_model()
    for a, b in zip(from_shipped.generator.get_weights(), best.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = {**tiny_srgan_config(), "num_blocks": tiny_srgan_config().get("num_blocks", 1) + 1}
    with pytest.raises(ValueError, match="does not match"):
        SrganTask(other, phase="adversarial", init=tmp_path / "generator.keras").build_model()


@pytest.mark.slow
def test_conditional_gan_task_under_mirrored_strategy(mirrored_runs):
    result, out = mirrored_runs("gan")
    assert result["replicas"] == 2
    assert result["step"] == 2 * STEPS and result["optimizers"] == ["discriminator", "generator"]
    assert [r["epoch"] for r in result["history"]] == [1, 2]
    assert all(np.isfinite(r[k]) for r in result["history"] for k in ("d_loss", "g_loss", "d_x", "d_g_z"))
    assert result["generator_moved"] > 0
    assert sorted(os.listdir(out / "samples")) == ["epoch-001.png", "epoch-002.png"]
    assert (out / "last.keras").exists() and not (out / "best.keras").exists()  # no score: the last is kept


@pytest.mark.slow
def test_srgan_adversarial_task_under_mirrored_strategy(mirrored_runs):
    result, out = mirrored_runs("srgan")
    assert result["replicas"] == 2 and result["step"] == 2 * STEPS
    assert result["optimizers"] == ["discriminator", "generator"]
    last = result["history"][-1]
    for key in ("d_loss", "g_loss", "content_loss", "adversarial_loss", "d_x", "d_g_z", "val_psnr"):
        assert np.isfinite(last[key]), key
    assert "score" not in last and result["generator_moved"] > 0
    assert sorted(os.listdir(out / "samples")) == ["epoch-001.png", "epoch-002.png"]
