"""A tiny GAN training job for ``test_gan_task.py``; run by the tests, not collected by pytest.

Trains ``--task gan`` (a conditional 16 px DCGAN) or ``--task srgan`` (pixel pre-training, then an
adversarial run started from it) through ``facezoo.train.loop.Trainer`` for ``--epochs`` x
``--steps``, with ``--mirrored`` under ``MirroredStrategy`` over two logical CPU devices (which must be
configured before TensorFlow initialises, hence a process of its own). Writes ``result.json``
(replicas, step, history, how far the generator moved) into ``--out``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--task", choices=("gan", "srgan"), default="gan")
    p.add_argument("--mirrored", action="store_true")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="global batch")
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    if args.mirrored:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from facezoo.tasks.gan import GanTask, SrganTask
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from facezoo.train.strategy import choose_strategy
    from tests.tasks.gan_synthetic import pipeline_like, tiny_dcgan_config, tiny_srgan_config

    strategy = choose_strategy()
    config = TrainConfig(epochs=args.epochs, steps_per_epoch=args.steps, learning_rate=1e-3,
                         reference_batch=args.batch, weight_decay=0.0, schedule="constant")
    size = 16 if args.task == "gan" else 32
    n = args.steps * args.batch
    train = pipeline_like(n, size, args.batch)
    val = {"val": pipeline_like(args.batch, size, args.batch, seed=1, repeat=False)}
    result = {"replicas": strategy.num_replicas_in_sync, "runs": []}
    if args.task == "gan":
        stages = [("gan", GanTask(tiny_dcgan_config(conditional=True), samples_dir=os.path.join(args.out, "samples"),
                                  sample_columns=4, steps_per_epoch=args.steps))]
    else:
        pretrain = os.path.join(args.out, "pretrain")
        stages = [("pretrain", SrganTask(tiny_srgan_config(), phase="pretrain")),
                  ("adversarial", SrganTask(tiny_srgan_config(), phase="adversarial",
                                            init=os.path.join(pretrain, "best.keras"),
                                            samples_dir=os.path.join(args.out, "samples"),
                                            steps_per_epoch=args.steps))]
    for name, task in stages:
        trainer = Trainer(task, train, config, os.path.join(args.out, name), global_batch=args.batch,
                          strategy=strategy, val_data=val)
        before = [w.numpy().copy() for w in trainer.model.generator.trainable_weights]
        history = trainer.fit(verbose=False)
        moved = max(float(np.abs(w.numpy() - b).max()) for w, b in zip(trainer.model.generator.trainable_weights,
                                                                       before))
        result["runs"].append({"name": name, "step": int(trainer.step.numpy()), "history": history,
                               "generator_moved": moved})
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
