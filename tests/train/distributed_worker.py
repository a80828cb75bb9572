"""A tiny training job for ``test_distributed.py``; run by the tests, not collected by pytest.

Trains a 32 px, width-0.125 DMTL for ``--epochs`` x ``--steps`` on fixed synthetic data (every epoch
the same batches), validating every epoch, under the strategy a recipe would get
(``TF_CONFIG`` -> ``MultiWorkerMirroredStrategy``), or with ``--mirrored`` under
``MirroredStrategy`` over two logical CPU devices in one process. Writes ``result-<tag>.json``
(restored step, history, largest difference between replica copies) and ``weights-<tag>.npz``
into ``--out``; the tag is ``w<index>`` for a worker, ``mirrored`` otherwise.

``--die-at-step S --die-worker I --die-marker PATH``: worker ``I`` exits abruptly (``os._exit(3)``)
when ``S`` steps are done, unless ``PATH`` exists; it creates ``PATH`` first, so only its first
life dies.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--mirrored", action="store_true")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="global batch")
    p.add_argument("--die-at-step", type=int, default=None)
    p.add_argument("--die-worker", type=int, default=1)
    p.add_argument("--die-marker", default=None)
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    if args.mirrored:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from facezoo.models.dmtl import dmtl
    from facezoo.train.strategy import choose_strategy, cluster_spec
    from facezoo.tasks.dmtl import DmtlTask
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from tests.train.synthetic import synthetic_dataset, tiny_config

    strategy = choose_strategy()
    spec = cluster_spec()
    index = spec["task"]["index"] if spec else None
    tag = "mirrored" if spec is None else f"w{index}"
    config = tiny_config()
    n = args.steps * args.batch
    train = synthetic_dataset(config, n=n, batch=args.batch)
    val = synthetic_dataset(config, n=n, batch=args.batch, seed=1, repeat=False)
    train_config = TrainConfig(epochs=args.epochs, steps_per_epoch=args.steps, learning_rate=0.02,
                               schedule="constant", plateau_patience=1, monitor="adience/mean_accuracy")
    trainer = Trainer(DmtlTask(lambda: dmtl(config)), train, train_config, args.out, global_batch=args.batch,
                      strategy=strategy, val_data={"adience": val})
    trainer.restore()
    start_step = int(trainer.step.numpy())
    if args.die_at_step is not None and index == args.die_worker and not os.path.exists(args.die_marker):
        open(args.die_marker, "w").close()
        train_step = trainer._train_step

        def dying_step(iterator):
            if int(trainer.step.numpy()) == args.die_at_step:
                print(f"worker {index}: dying at step {args.die_at_step}", flush=True)
                os._exit(3)
            return train_step(iterator)

        trainer._train_step = dying_step
    history = trainer.fit(verbose=False)
    weights = trainer.model.weights
    spread = max(float(np.max(np.abs(c.numpy() - w.value.values[0].numpy())))
                 for w in weights if hasattr(w.value, "values") for c in w.value.values)
    np.savez(os.path.join(args.out, f"weights-{tag}.npz"), *[w.numpy() for w in weights])
    result = {"replicas": strategy.num_replicas_in_sync, "start_step": start_step,
              "step": int(trainer.step.numpy()), "history": history, "replica_spread": spread}
    with open(os.path.join(args.out, f"result-{tag}.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
