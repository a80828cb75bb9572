"""Teacher embeddings: dlib's 128-d face descriptor of every staged RGB face, computed once and cached.

The face trunk of ``recipes/distill_trunk.py`` learns to reproduce these vectors from our own aligned crops.
dlib (``dlib-bin``) and its CC0 model files (``face_recognition_models``) are a training-time extra only
(``pip install -e ".[teacher]"``); nothing at inference imports them.

For each image: our RetinaFace detector finds the largest face (box + five landmarks, stored so the student
can align the same face later); dlib's 5-point shape predictor refines that box into its own landmarks; dlib
cuts its 150x150 chip and computes the descriptor (and, with ``--flip``, the descriptor of the mirrored chip).
Images without a detected face are kept with ``found=False`` and no embedding.

Work is split into chunks of ``--chunk`` images, each written atomically to
``OUT/<source>/chunk_NNNNN.npz`` (``flip_NNNNN.npz`` for the mirrored pass); a rerun skips finished chunks, so
the job resumes after any stop. ``--shard K/N`` lets N processes share the chunks.

    python recipes/teacher_embeddings.py --out runs/teacher            # ~65 ms a face on one core
    python recipes/teacher_embeddings.py --out runs/teacher --flip     # second pass: mirrored chips

LFW images are all embedded by default, including the people of evaluation folds (their vectors give dlib's own
pair accuracy as a reference); ``distill_trunk.py`` leaves those people out of training. ``--skip-lfw-folds 1,2,3``
leaves them out of the cache too.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

SOURCES = {
    "celeba": "celeba/img_align_celeba/*.jpg",
    "utkface": "utkface/UTKFace/*.jpg",
    "lfw": "lfw/lfw-deepfunneled/*/*.jpg",
}


def source_files(data_root: str, source: str, skip_folds=(), only_folds=()) -> list[str]:
    """The source's image paths relative to ``data_root``, sorted (a fixed chunking); for LFW without the
    people of any pair in ``skip_folds`` (or with only the images of pairs in ``only_folds``)."""
    paths = sorted(glob.glob(os.path.join(data_root, SOURCES[source])))
    if source == "lfw" and only_folds:
        from facezoo.data.lfw_pairs import read_pairs

        root = os.path.join(data_root, "lfw")
        used = {os.path.normpath(p) for pair in read_pairs(os.path.join(root, "pairs.txt"), root)
                if pair.fold in only_folds for p in (pair.path_a, pair.path_b)}
        paths = [p for p in paths if os.path.normpath(p) in used]
    if source == "lfw" and skip_folds:
        from facezoo.data.identities import lfw_evaluation_people
        held = lfw_evaluation_people(os.path.join(data_root, "lfw"), skip_folds)
        paths = [p for p in paths if os.path.basename(os.path.dirname(p)) not in held]
    return [os.path.relpath(p, data_root) for p in paths]


def load_chunks(out_dir: str, source: str, flip: bool = False) -> dict:
    """Concatenates a source's finished chunks: ``files``, ``emb``, ``landmarks``, ``box``, ``score``, ``found``
    (and ``emb_flip`` where the mirrored pass has run for every chunk)."""
    folder = os.path.join(out_dir, source)
    chunks = sorted(glob.glob(os.path.join(folder, "chunk_*.npz")))
    if not chunks:
        raise FileNotFoundError(f"no teacher chunks under {folder!r}; run recipes/teacher_embeddings.py first")
    parts = [dict(np.load(c)) for c in chunks]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    flips = [os.path.join(folder, os.path.basename(c).replace("chunk_", "flip_")) for c in chunks]
    if flip and all(os.path.isfile(f) for f in flips):
        merged["emb_flip"] = np.concatenate([np.load(f)["emb_flip"] for f in flips])
    return merged


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be K/N (e.g. 0/2), got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def main(argv=None) -> int:
    from facezoo.train.recipe_args import default_data_root, positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=default_data_root(__file__), help="staged data (default: %(default)s)")
    p.add_argument("--out", default="runs/teacher", help="cache folder (default: %(default)s)")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    p.add_argument("--chunk", type=positive_int, default=500, help="images per cached chunk")
    p.add_argument("--shard", type=_parse_shard, default=(0, 1), help="K/N: this process does chunks i%%N==K")
    p.add_argument("--flip", action="store_true", help="the mirrored pass (after the plain one)")
    p.add_argument("--skip-lfw-folds", default="",
                   help="e.g. 1,2,3: leave out LFW people of these View-2 folds (they never train; saves time, "
                        "loses dlib's own reference on them). Keep it the same across runs of one cache.")
    p.add_argument("--only-lfw-folds", default="",
                   help="e.g. 1,2,3: only the LFW images of these folds' pairs (dlib's reference score on them; "
                        "use another --out than the training cache)")
    p.add_argument("--limit", type=positive_int, default=None, help="first N images per source (smoke tests)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    try:
        import dlib
        import face_recognition_models as frm
    except ImportError:
        print("error: teacher embeddings need the training-time extra: pip install -e '.[teacher]' "
              "(dlib-bin, face_recognition_models)", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from facezoo.face import get_detector
    from facezoo.images import load_image

    recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    shaper = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    detector = None
    k, n = args.shard
    for source in args.sources:
        skip = {int(v) for v in args.skip_lfw_folds.split(",") if v.strip()}
        only = {int(v) for v in args.only_lfw_folds.split(",") if v.strip()}
        files = source_files(args.data_root, source, skip, only)[: args.limit]
        if not files:
            print(f"warning: no {source} images under {args.data_root}", file=sys.stderr)
            continue
        folder = os.path.join(args.out, source)
        os.makedirs(folder, exist_ok=True)
        starts = [s for i, s in enumerate(range(0, len(files), args.chunk)) if i % n == k]
        todo = []
        for s in starts:
            plain = os.path.join(folder, f"chunk_{s // args.chunk:05d}.npz")
            target = plain.replace("chunk_", "flip_") if args.flip else plain
            if os.path.isfile(target):
                continue
            if args.flip and not os.path.isfile(plain):
                print(f"error: {plain} missing: run the plain pass before --flip", file=sys.stderr)
                return 2
            todo.append((s, plain, target))
        bar = tqdm(total=sum(min(args.chunk, len(files) - s) for s, _, _ in todo),
                   desc=f"teacher {source}{' flip' if args.flip else ''}", unit="face",
                   disable=args.no_progress)
        for s, plain, target in todo:
            names = files[s: s + args.chunk]
            images = [load_image(os.path.join(args.data_root, f)) for f in names]
            if args.flip:
                cached = np.load(plain)
                emb = np.zeros((len(names), 128), np.float32)
                for i, (image, found, box) in enumerate(zip(images, cached["found"], cached["box"])):
                    if found:
                        chip = _chip(dlib, shaper, image, box)
                        emb[i] = np.asarray(recognizer.compute_face_descriptor(
                            np.ascontiguousarray(chip[:, ::-1])), np.float32)
                    bar.update(1)
                _save(target, emb_flip=emb)
                continue
            if detector is None:
                detector = get_detector("retinaface")
            found = np.zeros(len(names), bool)
            emb = np.zeros((len(names), 128), np.float32)
            landmarks = np.zeros((len(names), 5, 2), np.float32)
            boxes = np.zeros((len(names), 4), np.float32)
            scores = np.zeros(len(names), np.float32)
            detections = detector.detect(images, max_faces=1)
            for i, (image, faces) in enumerate(zip(images, detections)):
                if faces:
                    face = faces[0]
                    found[i], landmarks[i], boxes[i], scores[i] = True, face.landmarks, face.box, face.score
                    chip = _chip(dlib, shaper, image, face.box)
                    emb[i] = np.asarray(recognizer.compute_face_descriptor(chip), np.float32)
                bar.update(1)
            _save(target, files=np.asarray(names), emb=emb, landmarks=landmarks, box=boxes,
                  score=scores, found=found)
        bar.close()
    return 0


def _chip(dlib, shaper, image, box):
    left, top, width, height = (float(v) for v in box)
    rect = dlib.rectangle(int(round(left)), int(round(top)), int(round(left + width)), int(round(top + height)))
    shape = shaper(image, rect)
    return dlib.get_face_chip(image, shape, size=150, padding=0.25)


def _save(path, **arrays):
    """``np.savez`` through a temporary file, so a stopped run never leaves half a chunk."""
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
