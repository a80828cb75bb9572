"""Write the exported graphs shipped beside the weights: ``exported/<name>/model.onnx`` and ``model_int8.onnx``.

Run from the repository root after (re)training or re-shipping a model: the graphs record the sha256 of the weights
they were built from (``card.graphs[...]["source_sha256"]``), and ``facezoo.load`` ignores a graph of other
weights (it then builds one into the user cache when TensorFlow is installed, and a ``facezoo[lite]`` install
says to rerun this recipe).

For each model: the fp32 ONNX graph of the BatchNorm-folded network (``facezoo.backends.build``), checked against
the Keras model on the bundled crop (verification models: fp32 only); for attribute and expression models also the
int8 QDQ graph (uint8 activations, per-channel int8 weights) calibrated on ``--calibration`` images of the model's
**training** split (never validation), spread evenly. The detector gets its fp32 graph (uint8 canvases in,
preprocessing inside). Each file is listed on the card (``graphs`` and ``files``, with sha256) and must stay
under 15 MB: an fp32 graph over it stores its weights as float16 behind casts to float32 (``store_float16``).

Examples:
    python recipes/export_graphs.py                               # every shipped model, data from ../shared/data
    python recipes/export_graphs.py --models dmtl_celeba,dmtl_utkface --data-root ../shared/data
"""
import argparse
import json
import os
import sys

from facezoo.train.recipe_args import default_data_root, positive_int

MAX_BYTES = 15 * 1024 * 1024
FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated (default: every shipped model of task attributes, expression "
                   "or detection)")
    p.add_argument("--data-root", default=None, help="data root for int8 calibration (default: $FACEZOO_DATA or "
                   "../shared/data)")
    p.add_argument("--calibration", type=positive_int, default=500, help="training images for int8 (default 500)")
    p.add_argument("--no-int8", action="store_true", help="write the fp32 graphs only")
    args = p.parse_args(argv)

    import numpy as np

    import facezoo
    from facezoo.backends import EXPORTED_TASKS
    from facezoo.backends.build import build_graph
    from facezoo.bench import _records
    from facezoo.zoo import model_card, model_dir
    from facezoo.zoo.package import finalize_files
    root = args.data_root or default_data_root(__file__)
    names = args.models.split(",") if args.models else [n for n in facezoo.list_models()
                                                         if model_card(n).task in EXPORTED_TASKS]
    command = "python recipes/export_graphs.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in names:
        directory, card = model_dir(name), model_card(name)
        precisions = ["fp32"] + ([] if args.no_int8 or card.task in ("detection", "verification") else ["int8"])
        for precision in precisions:
            calibration = None
            if precision == "int8":
                train = _records(card, root, "train", args.calibration)
                if not train:
                    print(f"{name}: no training images under {root}; int8 graph not written", file=sys.stderr)
                    continue
                calibration = [r.image for r in train]
            path = os.path.join(directory, FILES[precision])
            build_graph(directory, card, "onnx", precision, path, calibration=calibration,
                        calibration_limit=args.calibration, command=command)
            with open(path + ".json") as f:
                info = json.load(f)
            os.remove(path + ".json")
            if info["size_bytes"] > MAX_BYTES and precision != "fp32":
                raise SystemExit(f"{path}: {info['size_bytes'] / 1e6:.1f} MB, over the 15 MB limit of shipped files")
            card.graphs[f"onnx/{precision}"] = {"file": FILES[precision], **{k: v for k, v in info.items()
                                                                               if k not in ("model", "format")}}
            card = finalize_files(directory, card)
            print(f"{name}: wrote {path} ({info['size_bytes'] / 1e6:.1f} MB)", flush=True)
        card = _fit_fp32(directory, card)
        _check(name, np)


def _fit_fp32(directory, card):
    """An fp32 graph over the size limit keeps its weights as float16 behind casts (it still computes in fp32);
    done after the int8 graph, which is quantized from the full-precision weights."""
    from facezoo.export.onnx import store_float16
    from facezoo.files import sha256_of
    from facezoo.zoo.package import finalize_files
    entry = card.graphs.get("onnx/fp32")
    path = os.path.join(directory, FILES["fp32"])
    if not entry or os.path.getsize(path) <= MAX_BYTES:
        return card
    done = store_float16(path)
    if done["size_bytes"] > MAX_BYTES:
        raise SystemExit(f"{path}: {done['size_bytes'] / 1e6:.1f} MB with float16 weights, over the 15 MB limit")
    entry.update(sha256=sha256_of(path), size_bytes=done["size_bytes"],
                 weights_storage=f"float16, cast to float32 in the graph ({done['converted']} initializers; "
                                 "facezoo.export.onnx.store_float16)")
    print(f"{card.name}: {path} over 15 MB in float32: weights stored as float16 "
          f"({done['size_bytes'] / 1e6:.1f} MB)", flush=True)
    return finalize_files(directory, card)


def _check(name, np):
    """The shipped fp32 graph against Keras on the bundled crop (probabilities)."""
    import facezoo
    if facezoo.model_card(name).task == "detection":
        image = facezoo.images.load_image(facezoo.sample_photo())
        a = facezoo.load(name, backend="keras").detect([image])[0]
        b = facezoo.load(name, backend="onnxruntime").detect([image])[0]
        print(f"{name}: keras {len(a)} faces, onnxruntime {len(b)}; box difference "
              f"{max((np.abs(np.subtract(x.box, y.box)).max() for x, y in zip(a, b)), default=0):.2g} px")
        return
    sample = facezoo.sample_image()
    if facezoo.model_card(name).task == "verification":
        a = facezoo.load(name, backend="keras").embed(sample)
        b = facezoo.load(name, backend="onnxruntime").embed(sample)
        print(f"{name}: onnxruntime embedding of the bundled crop differs from keras by {np.abs(a - b).max():.2g} "
              f"(distance {np.linalg.norm(a - b):.2g})")
        return
    k = facezoo.load(name, backend="keras").predict(sample, check_face=False)["attributes"]
    for precision in ("fp32", "int8"):
        try:
            o = facezoo.load(name, backend="onnxruntime", precision=precision).predict(sample, check_face=False)
        except facezoo.errors.UserError as e:
            print(f"{name} {precision}: {e}")
            continue
        diff = max(abs(k[a][f] - o["attributes"][a][f]) for a in k for f in ("probability", "confidence")
                   if f in k[a])
        print(f"{name} {precision}: largest probability/confidence change on the bundled crop {diff:.4f}")


if __name__ == "__main__":
    sys.exit(main())
