"""The generic loop runs a task that is not DMTL: a two-optimizer toy GAN trains, checkpoints, resumes
mid-epoch, keeps its best model, and trains under MirroredStrategy over two logical CPU devices."""
import json
import os
import subprocess
import sys

import pytest

from facezoo.train.config import TrainConfig
from facezoo.train.loop import Trainer
from tests.tasks.toy_gan import real_data, toy_gan_task

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def make(out, epochs=3, **kwargs):
    config = TrainConfig(epochs=epochs, steps_per_epoch=3, learning_rate=1e-2, reference_batch=8,
                         schedule="constant", **kwargs)
    return Trainer(toy_gan_task(), real_data(8), config, out, global_batch=8, val_data={"toy": None})


class Interrupted(Exception):
    pass


def test_two_optimizer_task_trains_logs_both_losses_and_keeps_the_best(tmp_path):
    trainer = make(tmp_path, epochs=2)
    before = [w.numpy().copy() for w in trainer.model.weights]
    history = trainer.fit(verbose=False)
    assert [r["epoch"] for r in history] == [1, 2]
    assert all({"d_loss", "g_loss", "sample_mean", "score"} <= set(r) for r in history)
    assert {k: int(o.iterations.numpy()) for k, o in trainer.optimizers.items()} == {
        "discriminator": 6, "generator": 6}
    assert any((b != w.numpy()).any() for b, w in zip(before, trainer.model.weights))
    assert (tmp_path / "best.keras").exists() and (tmp_path / "last.keras").exists()


def test_two_optimizer_task_resumes_mid_epoch_with_both_optimizers(tmp_path):
    first = make(tmp_path, checkpoint_every_steps=1)
    step = first._train_step

    def dying(iterator):
        if int(first.step.numpy()) == 4:  # one step into epoch 2
            raise Interrupted
        return step(iterator)

    first._train_step = dying
    with pytest.raises(Interrupted):
        first.fit(verbose=False)
    second = make(tmp_path)
    assert second.restore()
    assert int(second.step.numpy()) == 4
    assert {k: int(o.iterations.numpy()) for k, o in second.optimizers.items()} == {
        "discriminator": 4, "generator": 4}
    history = second.fit(verbose=False)
    assert [r["epoch"] for r in history] == [1, 2, 3] and [r["step"] for r in history] == [3, 6, 9]
    assert int(second.optimizers["generator"].iterations.numpy()) == 9


@pytest.mark.slow
def test_two_optimizer_task_under_mirrored_strategy(tmp_path):
    subprocess.run([sys.executable, os.path.join(HERE, "toy_gan.py"), "--mirrored", "--out", str(tmp_path)],
                   cwd=REPO, check=True, timeout=600, capture_output=True)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["replicas"] == 2
    assert [r["epoch"] for r in result["history"]] == [1, 2]
    assert result["iterations"] == {"discriminator": 6, "generator": 6}
    assert result["replica_spread"] == 0.0  # mirrored variables stay identical on both replicas
