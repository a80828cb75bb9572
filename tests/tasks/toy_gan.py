"""A second, non-DMTL task for the generic loop: a toy GAN with two optimizers (1-D Gaussian data).

Also a script: ``python tests/tasks/toy_gan.py --mirrored --out DIR`` trains it under MirroredStrategy over
two logical CPU devices (logical devices must be configured before TensorFlow starts, hence a process).
"""
import argparse
import json
import os
import sys

NOISE = 4


def build_toy_gan():
    import keras
    z = keras.Input((NOISE,), name="z")
    h = keras.layers.Dense(8, activation="relu", name="g_hidden")(z)
    generator = keras.Model(z, keras.layers.Dense(1, name="g_out")(h), name="generator")
    x = keras.Input((1,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="d_hidden")(x)
    discriminator = keras.Model(x, keras.layers.Dense(1, name="d_out")(h), name="discriminator")
    z_in, x_in = keras.Input((NOISE,), name="noise"), keras.Input((1,), name="real")
    return keras.Model([z_in, x_in], [discriminator(generator(z_in)), discriminator(x_in)], name="toy_gan")


def toy_gan_task():
    import keras
    import tensorflow as tf

    from facezoo.tasks.base import Task

    class ToyGanTask(Task):
        """D then G, each with its own optimizer; noise is seeded by the generator's step (checkpointed)."""

        def build_model(self):
            return build_toy_gan()

        def build_optimizers(self, model, learning_rate, weight_decay):
            out = {}
            for name in ("discriminator", "generator"):
                opt = keras.optimizers.Adam(learning_rate)
                opt.build(model.get_layer(name).trainable_variables)
                out[name] = opt
            return out

        def train_step(self, batch, model, optimizers, global_batch):
            g, d = model.get_layer("generator"), model.get_layer("discriminator")
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.stack([tf.cast(optimizers["generator"].iterations, tf.int32), replica])
            z = tf.random.stateless_normal((tf.shape(batch)[0], NOISE), seed=seed)

            def bce(logits, target):
                return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target),
                                                                             logits)) / global_batch

            with tf.GradientTape() as tape:
                d_loss = bce(d(batch, training=True), 1.0) + bce(d(g(z, training=True), training=True), 0.0)
            grads = tape.gradient(d_loss, d.trainable_variables)
            optimizers["discriminator"].apply_gradients(zip(grads, d.trainable_variables))
            with tf.GradientTape() as tape:
                g_loss = bce(d(g(z, training=True), training=True), 1.0)
            grads = tape.gradient(g_loss, g.trainable_variables)
            optimizers["generator"].apply_gradients(zip(grads, g.trainable_variables))
            return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

        def validate(self, model, val_data):
            samples = model.get_layer("generator")(tf.random.stateless_normal((256, NOISE), seed=(1, 2)))
            return {"sample_mean": float(tf.reduce_mean(samples))}

        def score(self, metrics):
            return -abs(metrics["sample_mean"] - 3.0) if "sample_mean" in metrics else None

    return ToyGanTask()


def real_data(batch, n=64):
    import tensorflow as tf
    x = tf.random.stateless_normal((n, 1), seed=(7, 7)) * 0.5 + 3.0
    return tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=True).repeat()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mirrored", action="store_true")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    import tensorflow as tf
    if args.mirrored:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if args.mirrored else None
    trainer = Trainer(toy_gan_task(), real_data(8), TrainConfig(epochs=args.epochs, steps_per_epoch=3,
                                                                learning_rate=1e-2, reference_batch=8,
                                                                schedule="constant"),
                      args.out, global_batch=8, strategy=strategy, val_data={"toy": None})
    history = trainer.fit(verbose=False)
    spread = 0.0
    for w in trainer.model.weights:
        values = getattr(w.value, "values", None)
        if values:
            spread = max(spread, max(float(abs(v.numpy() - values[0].numpy()).max()) for v in values))
    result = {"replicas": trainer.strategy.num_replicas_in_sync, "history": history, "replica_spread": spread,
              "iterations": {k: int(o.iterations.numpy()) for k, o in trainer.optimizers.items()}}
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
