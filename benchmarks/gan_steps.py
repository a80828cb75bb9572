"""Seconds per training step of DCGAN and SRGAN configurations (for planning CPU training runs).

Run from the repository root (``python benchmarks/gan_steps.py --help``). Each configuration builds the
model, compiles one step (``DCGAN.adversarial_step``, ``SRGAN.pretrain_step`` / ``adversarial_step``, the
functions ``recipes/train_gan.py`` and ``recipes/train_srgan.py`` train with) as a ``tf.function`` on random
batches in [-1, 1], and reports the median wall time of ``--steps`` steps after two warm-up steps. The
input pipeline is left out (it decodes 64×64 JPEGs, far cheaper than a step). On a shared machine the
figures include the other jobs' load: the JSON records the load average at the start and end.

Configurations are ``kind:key=value,...`` (kind ``dcgan``, ``srgan_pretrain`` or ``srgan_adversarial``; keys
are the recipe options without dashes), e.g. ``dcgan:image_size=64,generator_filters=32,
discriminator_filters=32,batch_size=64``.

Usage::

    python benchmarks/gan_steps.py --out benchmarks/results/gan_steps.json
    python benchmarks/gan_steps.py --config dcgan:batch_size=32 --steps 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

DEFAULT_CONFIGS = (
    "dcgan:image_size=64,generator_filters=64,discriminator_filters=64,batch_size=64",
    "dcgan:image_size=64,generator_filters=32,discriminator_filters=32,batch_size=64",
    "dcgan:image_size=64,generator_filters=32,discriminator_filters=32,batch_size=32",
    "dcgan:image_size=64,generator_filters=32,discriminator_filters=32,batch_size=64,conditions=Male+Smiling",
    "srgan_pretrain:hr_size=64,filters=32,blocks=8,batch_size=16",
    "srgan_pretrain:hr_size=64,filters=32,blocks=4,batch_size=16",
    "srgan_adversarial:hr_size=64,filters=32,blocks=8,discriminator_filters=32,discriminator_units=256,batch_size=16",
)


def parse_config(text: str) -> tuple[str, dict]:
    kind, _, rest = text.partition(":")
    if kind not in ("dcgan", "srgan_pretrain", "srgan_adversarial"):
        raise SystemExit(f"--config {text!r}: kind must be dcgan, srgan_pretrain or srgan_adversarial")
    options = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        options[key] = value.split("+") if key == "conditions" else (float(value) if "." in value else int(value))
    return kind, options


def time_steps(kind: str, options: dict, steps: int, seed: int = 0) -> dict:
    import keras
    import tensorflow as tf

    from facezoo.models.gan import DCGAN, SRGAN
    tf.random.set_seed(seed)
    batch = int(options.get("batch_size", 64))
    if kind == "dcgan":
        model = DCGAN(latent_dim=int(options.get("latent_dim", 100)), image_size=int(options.get("image_size", 64)),
                      generator_filters=int(options.get("generator_filters", 64)),
                      discriminator_filters=int(options.get("discriminator_filters", 64)),
                      conditions=tuple(options.get("conditions", ())), label_smoothing=0.1)
        size = model.image_size
        d_opt, g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
        condition = (tf.cast(tf.random.uniform((batch, len(model.conditions))) < 0.5, tf.float32)
                     if model.conditional else None)

        @tf.function
        def step(images):
            return model.adversarial_step(images, condition, d_opt, g_opt, 1.0 / batch)
        params = model.generator.count_params() + model.discriminator.count_params()
    else:
        model = SRGAN(hr_size=int(options.get("hr_size", 64)), generator_filters=int(options.get("filters", 32)),
                      num_blocks=int(options.get("blocks", 8)),
                      discriminator_filters=int(options.get("discriminator_filters", 32)),
                      discriminator_units=int(options.get("discriminator_units", 256)),
                      phase="pretrain" if kind == "srgan_pretrain" else "adversarial")
        size = model.hr_size
        g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)

        @tf.function
        def step(images):
            if kind == "srgan_pretrain":
                return model.pretrain_step(images, g_opt, 1.0 / batch)
            return model.adversarial_step(images, d_opt, g_opt, 1.0 / batch)
        params = model.generator.count_params() + (model.discriminator.count_params()
                                                   if kind == "srgan_adversarial" else 0)
    images = tf.random.uniform((batch, size, size, 3), -1.0, 1.0)
    t0 = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), step(images))
    compile_s = time.perf_counter() - t0
    tf.nest.map_structure(lambda t: t.numpy(), step(images))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(images))
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"kind": kind, "options": options, "batch_size": batch, "params": int(params),
            "seconds_per_step": round(median, 4), "images_per_second": round(batch / median, 1),
            "first_step_seconds": round(compile_s, 2), "steps_timed": steps}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", help="a configuration (repeatable; default: the planning set)")
    p.add_argument("--steps", type=int, default=6, help="steps timed per configuration (default 6)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--out", help="write the results as JSON")
    args = p.parse_args(argv)
    configs = [parse_config(c) for c in (args.config or DEFAULT_CONFIGS)]
    from facezoo.train.runner import set_threads
    set_threads(args.threads)
    results = {"cpus": os.cpu_count(), "threads": args.threads, "load_average_start": os.getloadavg(), "runs": []}
    print(f"{'configuration':100s} {'s/step':>7s} {'img/s':>7s} {'first':>6s}")
    for kind, options in configs:
        r = time_steps(kind, options, args.steps)
        results["runs"].append(r)
        desc = kind + ":" + ",".join(f"{k}={v}" for k, v in options.items())
        print(f"{desc:100s} {r['seconds_per_step']:7.3f} {r['images_per_second']:7.1f} {r['first_step_seconds']:6.1f}",
              flush=True)
    results["load_average_end"] = os.getloadavg()
    print(f"load average at start {results['load_average_start'][0]:.1f}, end {results['load_average_end'][0]:.1f} "
          f"on {results['cpus']} CPUs")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
