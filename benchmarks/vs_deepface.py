"""Time per face of deepface's analyze networks against facezoo's analyze path, side by side in one run.

Run from the repository root (``python benchmarks/vs_deepface.py --help``); LFW photos are read from
``$FACEZOO_DATA/lfw`` or ``../shared/data/lfw``. Nothing is downloaded: deepface's networks are rebuilt here
in Keras from their published definitions, with random weights (the cost of a forward pass does not depend on
the weights), and deepface itself is not needed.

deepface (``DeepFace.analyze(img, actions=("age", "gender", "race", "emotion"))``) runs, for every face it
finds, four separate networks on that face alone:

* age, gender and race: each its own VGG-Face network (VGG-16 layout on a 224x224 BGR face: 13 3x3
  convolutions, each after a 1-pixel zero padding, in 5 blocks closed by 2x2 max pooling; then a 7x7 and a
  1x1 convolution of 4096 channels, each followed by dropout) with the identity classifier replaced by a 1x1
  convolution to 101 ages, 2 genders or 6 races, flattened, softmax. The three trunks have different weights,
  so the 224x224 trunk runs three times per face.
* emotion: a small CNN on the face made grey and resized to 48x48 (5x5 conv 64, 5x5/2 max pool; two 3x3 conv
  64, 3x3/2 average pool; two 3x3 conv 128, 3x3/2 average pool; dense 1024, dense 1024, softmax over 7).

Each is called once per face as ``model(batch_of_one, training=False)`` (eager Keras), after the face crop is
letterboxed onto 224x224. That is the ``deepface`` row. Two rows give the same networks their best case (not
what deepface does): a cached ``tf.function`` per network at batch 1, and batches of ``--batch`` faces.
deepface's own detector is not timed: its rows start from the face crop (the box facezoo's detector found on
the same photos), so they are the networks alone, and the ratios against facezoo's whole path are
conservative.

facezoo rows: ``facezoo.analyze`` with its default models (``DEFAULT_MODELS``: dmtl_face, one network with 40
attributes, age, gender, race, 7 expressions) on the photos -- decode, RetinaFace detection, alignment to each
model's framing, the network(s) and decoding -- one photo per call and ``--batch`` photos per call; the
per-face model part alone (``FaceModel.describe_crops`` of every model on faces already aligned: scaling,
network, decoding of every head); and the networks alone (``FaceModel.logits`` on scaled faces), each at
batch 1 and batched. Per face = time / faces found.

Every configuration is timed once per round, in turn, for ``--rounds`` rounds (median and range printed). The
FLOPs (2 x multiply-accumulates of convolutions and dense layers) and parameters of both sides are counted
from the Keras models. Prints a table and writes JSON.

    python benchmarks/vs_deepface.py --out benchmarks/results/vs_deepface.json
    python benchmarks/vs_deepface.py --photos 8 --rounds 1          # a quick look
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
DATA = os.environ.get("FACEZOO_DATA", os.path.join(REPO, "..", "shared", "data"))

VGG_INPUT = 224
EMOTION_INPUT = 48
# deepface's classes per VGG-Face head (its DemographyUtils label lists: ages 0-100, Woman/Man, 6 races).
VGG_HEADS = {"age": 101, "gender": 2, "race": 6}
EMOTION_CLASSES = 7
# (filters, convolutions) of VGG-16's five blocks.
VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg_face_model(classes: int, name: str):
    """deepface's age/gender/race network: the VGG-Face trunk (through the second 4096 dropout) + a 1x1 head."""
    import keras
    from keras import layers
    inputs = keras.Input((VGG_INPUT, VGG_INPUT, 3), name=f"{name}_face")
    x = inputs
    for block, (filters, convs) in enumerate(VGG_BLOCKS, start=1):
        for k in range(1, convs + 1):
            x = layers.ZeroPadding2D(1, name=f"{name}_pad{block}_{k}")(x)
            x = layers.Conv2D(filters, 3, activation="relu", name=f"{name}_conv{block}_{k}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"{name}_pool{block}")(x)
    x = layers.Conv2D(4096, 7, activation="relu", name=f"{name}_fc6")(x)
    x = layers.Dropout(0.5, name=f"{name}_drop6")(x)
    x = layers.Conv2D(4096, 1, activation="relu", name=f"{name}_fc7")(x)
    x = layers.Dropout(0.5, name=f"{name}_drop7")(x)
    x = layers.Conv2D(classes, 1, name=f"{name}_predictions")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    outputs = layers.Softmax(name=f"{name}_softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def emotion_model(name: str = "emotion"):
    """deepface's emotion network on a 48x48 grey face."""
    import keras
    from keras import layers
    inputs = keras.Input((EMOTION_INPUT, EMOTION_INPUT, 1), name=f"{name}_face")
    x = layers.Conv2D(64, 5, activation="relu")(inputs)
    x = layers.MaxPooling2D(5, strides=2)(x)
    for filters in (64, 128):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.AveragePooling2D(3, strides=2)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(1024, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(EMOTION_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def deepface_models(seed: int = 0) -> dict:
    """The four networks of deepface's analyze, randomly initialised, keyed by action."""
    import keras
    keras.utils.set_random_seed(seed)
    models = {action: vgg_face_model(classes, action) for action, classes in VGG_HEADS.items()}
    models["emotion"] = emotion_model()
    return models


def letterbox(face, size: int = VGG_INPUT):
    """An RGB face crop -> float32 (1, size, size, 3) BGR, resized with its aspect kept and padded with black
    to a square in the middle (what deepface does to every face before its networks)."""
    import numpy as np
    from PIL import Image
    h, w = face.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"empty face crop of shape {face.shape}")
    scale = min(size / h, size / w)
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    resized = np.asarray(Image.fromarray(face).resize((nw, nh), Image.BILINEAR))
    out = np.zeros((size, size, 3), np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = resized[..., ::-1]
    return out[None]


def grey48(bgr224):
    """deepface's emotion input from the letterboxed BGR face: ITU-R 601 grey, resized to 48x48, (1, 48, 48, 1)."""
    import numpy as np
    from PIL import Image
    b, g, r = bgr224[0, ..., 0], bgr224[0, ..., 1], bgr224[0, ..., 2]
    grey = np.clip(0.114 * b + 0.587 * g + 0.299 * r, 0, 255).astype(np.uint8)
    small = np.asarray(Image.fromarray(grey).resize((EMOTION_INPUT, EMOTION_INPUT), Image.BILINEAR), np.float32)
    return small[None, ..., None]


def deepface_answers(probs: dict) -> dict:
    """deepface's decoding of one face: apparent age (expected value over 0-100) and percentages per class."""
    import numpy as np
    age = probs["age"].reshape(-1)
    out = {"age": float(np.sum(age * np.arange(age.size)))}
    for action in ("gender", "race", "emotion"):
        p = probs[action].reshape(-1)
        out[action] = (100 * p / p.sum()).tolist()
        out[f"dominant_{action}"] = int(np.argmax(p))
    return out


def count_flops_params(model) -> dict:
    from facezoo.models.flops import count_macs
    return {"flops": 2 * count_macs(model), "params": int(model.count_params())}


def lfw_photos(limit: int) -> list:
    """Sorted LFW photo paths, spread evenly over the set."""
    import glob
    paths = sorted(glob.glob(os.path.join(DATA, "lfw", "lfw-deepfunneled", "*", "*.jpg")))
    if not paths:
        raise SystemExit(f"vs_deepface: no LFW photos under {os.path.join(DATA, 'lfw', 'lfw-deepfunneled')} "
                         "(set FACEZOO_DATA)")
    step = max(1, len(paths) // limit)
    return paths[::step][:limit]


def face_crop(image, face):
    """The detector's box cut out of the photo (what deepface's extract_faces hands to its networks)."""
    h, w = image.shape[:2]
    left, top, bw, bh = face.box
    x0, y0 = max(0, int(round(left))), max(0, int(round(top)))
    x1, y1 = min(w, int(round(left + bw))), min(h, int(round(top + bh)))
    return image[y0:y1, x0:x1]


RATIOS = (("deepface", "facezoo_analyze_b1"), ("deepface", "facezoo_analyze_batched"),
          ("deepface_tf_function_b1", "facezoo_models_b1"),
          ("deepface_tf_function_batched", "facezoo_models_batched"),
          ("deepface_tf_function_batched", "facezoo_analyze_batched"),
          ("deepface_tf_function_b1", "facezoo_networks_b1"),
          ("deepface_tf_function_batched", "facezoo_networks_batched"))


class Runs:
    """Times of each configuration over rounds; ms per face."""

    def __init__(self):
        self.times: dict[str, list] = {}

    def time(self, key, fn, faces):
        t = time.perf_counter()
        fn()
        self.times.setdefault(key, []).append((time.perf_counter() - t) * 1000 / faces)

    def summary(self, key):
        v = self.times[key]
        return {"ms_per_face": statistics.median(v), "range": [min(v), max(v)], "rounds": len(v)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=32, help="LFW photos (spread over the set; default 32)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds, every configuration once per round (>= 1)")
    p.add_argument("--batch", type=int, default=32, help="faces (or photos) per call in the batched rows")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    for flag in ("photos", "rounds", "batch"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if not os.path.isdir(os.path.join(DATA, "lfw")):
        p.error(f"{os.path.join(DATA, 'lfw')} is not a directory (set FACEZOO_DATA)")

    from facezoo.cli import quiet_tensorflow
    quiet_tensorflow()
    import numpy as np
    import tensorflow as tf

    import facezoo
    from facezoo.face.analyze import DEFAULT_MODELS, FaceAnalyzer, _align
    from facezoo.face.retinaface import RetinaFaceMobileNet
    from facezoo.images import load_image

    photos = lfw_photos(args.photos)
    analyzer = FaceAnalyzer(DEFAULT_MODELS)
    decoded = [load_image(f) for f in photos]
    found = analyzer.detector.detect(decoded)
    faces = [(k, f) for k, image_faces in enumerate(found) for f in image_faces]
    n_faces = len(faces)
    if not n_faces:
        raise SystemExit("vs_deepface: no faces found in the photos")
    crops = [face_crop(decoded[k], f) for k, f in faces]
    aligned = {m.card.name: np.stack([_align(decoded[k], f, m.spec) for k, f in faces]) for m in analyzer.models}
    print(f"{len(photos)} LFW photos, {n_faces} faces; building deepface's networks (random weights)", flush=True)

    deep = deepface_models()
    compiled = {a: tf.function(lambda x, m=m: m(x, training=False), reduce_retracing=True) for a, m in deep.items()}

    def deepface_inputs(crop):
        face = letterbox(crop)
        return {"age": face, "gender": face, "race": face, "emotion": grey48(face)}

    def deepface_eager():  # what DeepFace.analyze does per face: preprocessing + four eager calls
        for crop in crops:
            x = deepface_inputs(crop)
            deepface_answers({a: deep[a](x[a], training=False).numpy() for a in deep})

    def deepface_function_b1():
        for crop in crops:
            x = deepface_inputs(crop)
            deepface_answers({a: compiled[a](tf.constant(x[a])).numpy() for a in deep})

    def deepface_function_batched():
        for start in range(0, n_faces, args.batch):
            xs = [deepface_inputs(c) for c in crops[start:start + args.batch]]
            batch = {a: np.concatenate([x[a] for x in xs]) for a in deep}
            probs = {a: compiled[a](tf.constant(batch[a])).numpy() for a in deep}
            for row in range(len(xs)):
                deepface_answers({a: probs[a][row] for a in deep})

    def facezoo_analyze_b1():
        for f in photos:
            analyzer.analyze(f)

    def facezoo_analyze_batched():
        for start in range(0, len(photos), args.batch):
            analyzer.analyze(photos[start:start + args.batch])

    def facezoo_models_b1():
        for m in analyzer.models:
            crops_m = aligned[m.card.name]
            for i in range(n_faces):
                m.describe_crops(crops_m[i:i + 1])

    normalized = {name: np.asarray(m.spec.normalize(tf.constant(aligned[name], tf.float32)))
                  for name, m in ((m.card.name, m) for m in analyzer.models)}

    def facezoo_networks_b1():
        for m in analyzer.models:
            x = normalized[m.card.name]
            for i in range(n_faces):
                m.logits(x[i:i + 1])

    def facezoo_networks_batched():
        for m in analyzer.models:
            x = normalized[m.card.name]
            for start in range(0, n_faces, args.batch):
                m.logits(x[start:start + args.batch])

    def facezoo_models_batched():
        for m in analyzer.models:
            crops_m = aligned[m.card.name]
            for start in range(0, n_faces, args.batch):
                m.describe_crops(crops_m[start:start + args.batch])

    backend = getattr(analyzer.models[0], "backend", "keras")
    nets = "network" if len(analyzer.models) == 1 else f"{len(analyzer.models)} networks"
    configs = [
        ("deepface", deepface_eager, "deepface's 4 networks as DeepFace.analyze runs them: eager, one face per call"),
        ("deepface_tf_function_b1", deepface_function_b1, "same networks, cached tf.function, batch 1"),
        ("deepface_tf_function_batched", deepface_function_batched, f"same networks, tf.function, {args.batch}/call"),
        ("facezoo_analyze_b1", facezoo_analyze_b1, f"facezoo.analyze, one photo per call (decode+detect+align+{nets})"),
        ("facezoo_analyze_batched", facezoo_analyze_batched, f"facezoo.analyze, {args.batch} photos per call"),
        ("facezoo_models_b1", facezoo_models_b1, f"facezoo's {nets} + decoding on aligned faces, batch 1"),
        ("facezoo_models_batched", facezoo_models_batched, f"facezoo's {nets} + decoding, {args.batch}/call"),
        ("facezoo_networks_b1", facezoo_networks_b1, f"facezoo's {nets} alone ({backend}), batch 1"),
        ("facezoo_networks_batched", facezoo_networks_batched, f"facezoo's {nets} alone, {args.batch}/call"),
    ]
    # Warm-up: traces every graph and touches every weight once.
    x0 = deepface_inputs(crops[0])
    for a in deep:
        deep[a](x0[a], training=False)
        compiled[a](tf.constant(x0[a]))
        compiled[a](tf.constant(np.concatenate([x0[a]] * min(args.batch, n_faces))))
    analyzer.analyze(photos[:min(args.batch, len(photos))])
    analyzer.analyze(photos[0])
    for warm in (facezoo_models_b1, facezoo_models_batched, facezoo_networks_b1, facezoo_networks_batched):
        warm()

    load_at_start = os.getloadavg()
    runs = Runs()
    for r in range(args.rounds):
        for key, fn, _ in configs:
            runs.time(key, fn, n_faces)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {runs.times[k][-1]:.1f}" for k, _, _ in configs),
              flush=True)

    rows = [{"config": key, "what": what, **runs.summary(key)} for key, _, what in configs]
    # Each ratio per round (the two times of a round were measured minutes apart at most), then median and range.
    ratios = {}
    for slow, fast in RATIOS:
        per_round = [a / b for a, b in zip(runs.times[slow], runs.times[fast])]
        ratios[f"{slow} / {fast}"] = {"median": statistics.median(per_round), "range": [min(per_round),
                                                                                        max(per_round)]}

    h, w = analyzer.detector.prepare([decoded[0]])[0].shape[1:3]
    cost = {"deepface": {a: count_flops_params(m) for a, m in deep.items()},
            # FLOPs of the Keras networks (the exported graphs facezoo runs by default compute the same thing).
            "facezoo": {m.card.name: count_flops_params(facezoo.load(m.card.name, backend="keras").model)
                        for m in analyzer.models}}
    cost["facezoo"][f"retinaface_mnet025 ({h}x{w}, once per photo)"] = count_flops_params(
        RetinaFaceMobileNet(weights=None, input_shape=(h, w, 3)))
    for side in ("deepface", "facezoo"):
        cost[side]["total"] = {k: sum(v[k] for v in cost[side].values()) for k in ("flops", "params")}

    print(f"\n{len(photos)} LFW photos, {n_faces} faces, {args.rounds} rounds; ms per face, median [range] "
          f"({os.cpu_count()} CPU cores, load average at start {load_at_start[0]:.2f})")
    print(f"{'configuration':32s} {'ms/face':>9s} {'range':>19s}  what")
    for row in rows:
        lo, hi = row["range"]
        print(f"{row['config']:32s} {row['ms_per_face']:9.2f} {f'[{lo:.2f}, {hi:.2f}]':>19s}  {row['what']}")
    print()
    print(f"{'ratio of ms per face (per round)':58s} {'median':>7s}  range")
    for k, v in ratios.items():
        print(f"{k:58s} {v['median']:6.1f}x  [{v['range'][0]:.1f}, {v['range'][1]:.1f}]")
    print(f"\n{'network':56s} {'GFLOP/face':>10s} {'params':>13s}")
    for side in ("deepface", "facezoo"):
        for k, v in cost[side].items():
            print(f"{side + ' ' + k:56s} {v['flops'] / 1e9:10.3f} {v['params']:13,d}")

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            command = "python benchmarks/vs_deepface.py " + " ".join(sys.argv[1:] if argv is None else argv)
            json.dump({"command": command,
                       "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "tensorflow": tf.__version__, "load_average_at_start": load_at_start,
                                   "load_average_at_end": os.getloadavg()},
                       "photos": len(photos), "faces": n_faces, "batch": args.batch,
                       "facezoo_models": list(DEFAULT_MODELS), "times_ms_per_face": runs.times,
                       "facezoo_version": facezoo.__version__, "results": rows, "ratios": ratios,
                       "flops_params": cost}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
