"""The generic training loop with the DMTL task on one device: resume, plateau and early stopping,
freezing, per-layer learning rates, masked losses, schedules. Tiny model (ResNet-18 at width 0.125, 32 px)."""
import json
import os

import numpy as np
import pytest

from facezoo.models.dmtl import dmtl
from facezoo.train import schedules
from facezoo.tasks.dmtl import DmtlTask
from facezoo.train.config import TrainConfig
from facezoo.train.loop import Trainer
from tests.train.synthetic import synthetic_dataset, tiny_config

BATCH = 4


TASK_ARGS = ("freeze_until", "lr_multipliers", "confidence_weight")


def make_trainer(out, steps=2, val=False, **config):
    model_config = tiny_config()
    train = synthetic_dataset(model_config, n=steps * BATCH, batch=BATCH)
    val_data = {"adience": synthetic_dataset(model_config, n=BATCH, batch=BATCH, repeat=False)} if val else None
    config.setdefault("schedule", "constant")
    task = DmtlTask(lambda: dmtl(model_config), **{k: config.pop(k) for k in TASK_ARGS if k in config})
    return Trainer(task, train, TrainConfig(steps_per_epoch=steps, **config), out, global_batch=BATCH,
                   val_data=val_data)


class Interrupted(Exception):
    pass


def interrupt_at(trainer, step):
    """Makes ``trainer`` raise before its training step number ``step`` (as if the process were killed)."""
    train_step = trainer._train_step

    def step_fn(iterator):
        if int(trainer.step.numpy()) == step:
            raise Interrupted
        return train_step(iterator)

    trainer._train_step = step_fn


def test_resume_after_interruption_continues_without_losing_or_repeating_epochs(tmp_path, capsys):
    first = make_trainer(tmp_path, epochs=4, checkpoint_every_steps=1)
    interrupt_at(first, 5)  # 2 epochs of 2 steps done, 1 step into epoch 3
    with pytest.raises(Interrupted):
        first.fit(verbose=False)
    assert [r["epoch"] for r in first.history] == [1, 2]
    # The last step of an epoch is not checkpointed twice; the mid-epoch checkpoint after step 5 exists.
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["checkpoint", "ckpt-4.data-00000-of-00001", "ckpt-4.index",
                                                     "ckpt-5.data-00000-of-00001", "ckpt-5.index",
                                                     "state-4.json", "state-5.json"]

    second = make_trainer(tmp_path, epochs=4)
    history = second.fit(verbose=True)
    assert "resumed at epoch 2, step 5" in capsys.readouterr().out
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert [r["step"] for r in history] == [2, 4, 6, 8]
    assert history[:2] == first.history
    assert int(second.step.numpy()) == 8 and int(second.epoch.numpy()) == 4
    with open(tmp_path / "state.json") as f:
        assert [r["epoch"] for r in json.load(f)["history"]] == [1, 2, 3, 4]
    assert (tmp_path / "history.csv").read_text().count("\n") == 5
    assert (tmp_path / "last.keras").exists()


def test_resume_with_another_steps_per_epoch_finishes_the_interrupted_epoch(tmp_path):
    first = make_trainer(tmp_path, epochs=4, checkpoint_every_steps=1)
    interrupt_at(first, 5)  # epochs 1-2 of 2 steps done, 1 step into epoch 3
    with pytest.raises(Interrupted):
        first.fit(verbose=False)
    second = make_trainer(tmp_path, steps=3, epochs=4)  # e.g. more data or another batch size
    history = second.fit(verbose=False)
    # Epoch 3 began at step 4 and ran 1 step; it gets 2 more, then epoch 4 gets 3.
    assert [r["step"] for r in history] == [2, 4, 7, 10]


def test_plateau_halves_the_learning_rate_and_early_stopping_sticks(tmp_path):
    config = dict(epochs=10, steps=1, val=True, plateau_patience=1, early_stopping_patience=2,
                  monitor="adience/mean_accuracy", learning_rate=1e-3, reference_batch=BATCH)
    trainer = make_trainer(tmp_path, **config)
    # A monitored value that never improves: the plateau halves after each epoch, training stops after 3.
    trainer.task.validate = lambda model, val_data: {"adience/mean_accuracy": 0.5}
    history = trainer.fit(verbose=False)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert [r["lr"] for r in history] == pytest.approx([1e-3, 1e-3, 5e-4])
    assert trainer.plateau.current == pytest.approx(0.25)
    assert (tmp_path / "best.keras").exists()
    # Running the finished command again restores the stopped state instead of training on.
    again = make_trainer(tmp_path, **config)
    assert again.fit(verbose=False) == history
    assert int(again.step.numpy()) == 3


def test_freeze_until_and_lr_multiplier_groups(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1, steps=1, freeze_until="conv1_relu", learning_rate=1e-2,
                           reference_batch=BATCH, weight_decay=0.0, lr_multipliers={"adience": 0.1})
    model = trainer.model
    frozen = model.get_layer("conv1_conv").kernel
    assert not model.get_layer("conv1_bn").trainable
    assert all(not v.path.startswith("conv1_") for v in model.trainable_variables)
    groups = trainer.task.groups
    assert sorted(groups) == [0.1, 1.0] and sorted(trainer.optimizers) == ["0", "1"]
    assert all(v.path.startswith("adience") for v in groups[0.1])
    assert not any(v.path.startswith("adience") for v in groups[1.0])
    before = {v.path: v.numpy().copy() for v in model.variables}
    trainer.fit(verbose=False)
    np.testing.assert_array_equal(frozen.numpy(), before[frozen.path])

    def median_update(variables):
        deltas = np.concatenate([np.abs(v.numpy() - before[v.path]).ravel() for v in variables])
        return np.median(deltas[deltas > 0])

    # Adam's first update is about lr * sign(gradient): the ratio of the groups' steps is the multiplier.
    assert median_update(groups[1.0]) == pytest.approx(1e-2, rel=0.2)
    assert median_update(groups[0.1]) == pytest.approx(1e-3, rel=0.2)


def test_freeze_until_unknown_layer_says_what_exists(tmp_path):
    with pytest.raises(ValueError, match="freeze_until='nope' is not a layer"):
        make_trainer(tmp_path, freeze_until="nope")


def test_a_dataset_that_runs_out_gets_a_clear_error(tmp_path):
    config = tiny_config()
    finite = synthetic_dataset(config, n=BATCH, batch=BATCH, repeat=False)
    trainer = Trainer(DmtlTask(lambda: dmtl(config)), finite, TrainConfig(epochs=1, steps_per_epoch=2), tmp_path,
                      global_batch=BATCH)
    with pytest.raises(ValueError, match=r"train_data ran out at epoch 1, step 1: it must repeat"):
        trainer.fit(verbose=False)


def test_compute_loss_ignores_masked_labels(tmp_path):
    trainer = make_trainer(tmp_path)
    rng = np.random.default_rng(0)
    outputs = {k: rng.normal(size=(3,) + tuple(v.shape[1:])).astype("float32")
               for k, v in trainer.model.output.items()}
    labels = {"adience__age_group": np.array([1, 5, 2], np.int32), "adience__gender": np.array([0, 1, 1], np.int32)}
    masks = {"adience__age_group": np.array([1, 0, 1], np.float32), "adience__gender": np.array([1, 1, 0], np.float32)}
    loss = trainer.task.compute_loss
    base, per_head = loss(trainer.model, outputs, labels, masks, BATCH)
    changed = {"adience__age_group": np.array([1, 0, 2], np.int32), "adience__gender": np.array([0, 1, 0], np.int32)}
    again, _ = loss(trainer.model, outputs, changed, masks, BATCH)
    assert float(again) == float(base)
    moved = {**labels, "adience__gender": np.array([1, 1, 1], np.int32)}
    assert float(loss(trainer.model, outputs, moved, masks, BATCH)[0]) != float(base)
    assert set(per_head) == {"adience__age_group", "adience__gender"}


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    f = schedules.cosine(10, warmup_epochs=2, floor=0.01)
    assert f(0) == pytest.approx(0.0005)
    assert f(1) == pytest.approx(0.5, abs=1e-3)
    assert f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(10) == pytest.approx(0.01)
    values = [f(e / 4) for e in range(8, 41)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_step_decay_at_20_50_75():
    f = schedules.make_schedule("step", 100, boundaries=(20, 50, 75))
    assert [f(e) for e in (0, 19.99, 20, 49, 50, 74, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        schedules.make_schedule("linear", 10)


def test_plateau_and_early_stopping_state_round_trip():
    plateau = schedules.ReduceOnPlateau(factor=0.5, patience=2, min_factor=0.2, mode="min")
    for value in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0):
        plateau.update(value)
    assert plateau.current == pytest.approx(0.2)  # 0.5, 0.25, then the floor
    copy = schedules.ReduceOnPlateau(mode="min")
    copy.load(plateau.state())
    assert copy.state() == plateau.state()
    stopper = schedules.EarlyStopping(patience=2)
    assert [stopper.update(v) for v in (0.5, 0.6, 0.6, 0.6)] == [False, False, False, True]
    restored = schedules.EarlyStopping(patience=2)
    restored.load(stopper.state())
    assert restored.stopped
