"""A tiny GAN training job for ``test_gan_task.py``; run by the tests, not collected by pytest.

Trains, one after the other in one process (TensorFlow starts once), ``gan`` (a conditional 16 px
DCGAN) and ``srgan`` (the adversarial phase of a 4 -> 16 px SRGAN: both optimizers) through
``facezoo.train.loop.Trainer`` for ``--epochs`` x ``--steps`` each, with ``--mirrored`` under
``MirroredStrategy`` over two logical CPU devices (which must be configured before TensorFlow
initialises, hence a process of its own). Writes ``<out>/<task>/result.json`` (replicas, step,
history, how far the generator moved, the optimizers' names).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", nargs="+", choices=("gan", "srgan"), default=["gan", "srgan"])
    p.add_argument("--mirrored", action="store_true")
    p.add_argument("--epochs", type=int, nargs="+", default=[2, 2], help="epochs of each task")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="global batch")
    args = p.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    if args.mirrored:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from facezoo.train.strategy import choose_strategy

    strategy = choose_strategy()
    for task_name, epochs in zip(args.tasks, args.epochs):
        run_task(task_name, epochs, strategy, args, os.path.join(args.out, task_name))


def run_task(task_name, epochs, strategy, args, out):
    import numpy as np

    from facezoo.tasks.gan import GanTask, SrganTask
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from tests.tasks.gan_synthetic import pipeline_like, tiny_dcgan_config, tiny_srgan_config

    config = TrainConfig(epochs=epochs, steps_per_epoch=args.steps, learning_rate=1e-3,
                         reference_batch=args.batch, weight_decay=0.0, schedule="constant")
    train = pipeline_like(args.steps * args.batch, 16, args.batch)
    val = {"val": pipeline_like(args.batch, 16, args.batch, seed=1, repeat=False)}
    samples = os.path.join(out, "samples")
    if task_name == "gan":
        task = GanTask(tiny_dcgan_config(conditional=True), samples_dir=samples, sample_columns=4,
                       steps_per_epoch=args.steps)
    else:
        task = SrganTask(tiny_srgan_config(), phase="adversarial", samples_dir=samples, steps_per_epoch=args.steps)
    trainer = Trainer(task, train, config, out, global_batch=args.batch, strategy=strategy, val_data=val)
    before = [w.numpy().copy() for w in trainer.model.generator.trainable_weights]
    history = trainer.fit(verbose=False)
    moved = max(float(np.abs(w.numpy() - b).max()) for w, b in zip(trainer.model.generator.trainable_weights, before))
    result = {"replicas": strategy.num_replicas_in_sync, "step": int(trainer.step.numpy()), "history": history,
              "generator_moved": moved, "optimizers": sorted(trainer.optimizers)}
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
