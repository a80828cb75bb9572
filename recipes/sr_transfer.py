"""Attribute recognition on low-quality faces, raw and restored by bicubic or super-resolution (thesis §4.2.3).

CelebA part: the attribute model's validation faces (the split its card records) are degraded — Gaussian
blur (--blur pixels), x4 bicubic downscaling, JPEG (--jpeg quality) — and written as CelebA trees (the
official label files restricted to those images) under OUT/celeba/<condition>/:

* ``original``: the faces as they are (the reference);
* ``degraded``: the small JPEGs themselves (the evaluator resizes them to the model input, as ``predict`` would);
* ``bicubic``:  bicubic x4 upsampling of the small faces;
* ``sr``:       the super-resolution model's x4 restoration (``--sr-model``; skipped with ``--sr-model none``).

Restored faces are stored as JPEG quality 95. Each tree goes through the evaluator (``facezoo evaluate``'s
code) and the accuracy is reported per attribute group (``ATTRIBUTE_GROUPS``: holistic, hair, eyes,
nose/cheeks, mouth/beard, accessories), with the mean balanced accuracy beside it.

With ``--finetune-epochs E`` the training faces are restored too (OUT/celeba/sr_train/, train and validation
images, the same identity split) and the attribute model is fine-tuned on them (``recipes/train_dmtl.py``'s
code path, warm-started from the shipped weights, into OUT/finetune/), then evaluated on the restored
validation faces.

Cross-data-set part (``--lfw-dir``): CelebA-trained Male on LFW news photos (gender from LFW's name lists),
through ``facezoo.analyze`` (detection, alignment), for the original photos, degraded (same recipe) and
restored ones: accuracy and balanced accuracy over photos with a face found, and the share found.

Writes OUT/sr_transfer.json and prints the tables.

Examples:
    python recipes/sr_transfer.py --sr-model srgan_face_x4 --out runs/sr_transfer
    python recipes/sr_transfer.py --sr-model none --max-images 500 --lfw-images 300 --out runs/sr_transfer_bicubic
    python recipes/sr_transfer.py --sr-model srgan_face_x4 --finetune-epochs 3 --out runs/sr_transfer_ft
"""
import argparse
import json
import os
import sys

from facezoo.attributes import CELEBA_HOLISTIC
from facezoo.train.recipe_args import default_data_root

# Regions of the face (our grouping; CELEBA_HOLISTIC is Han et al.'s whole-face set). Every attribute once.
ATTRIBUTE_GROUPS = {
    "holistic": sorted(CELEBA_HOLISTIC),
    "hair": ["Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Receding_Hairline",
             "Straight_Hair", "Wavy_Hair"],
    "eyes": ["Arched_Eyebrows", "Bags_Under_Eyes", "Bushy_Eyebrows", "Eyeglasses", "Narrow_Eyes"],
    "nose_cheeks": ["Big_Nose", "Double_Chin", "High_Cheekbones", "Pointy_Nose", "Rosy_Cheeks"],
    "mouth_beard": ["5_o_Clock_Shadow", "Big_Lips", "Goatee", "Mouth_Slightly_Open", "Mustache", "No_Beard",
                    "Sideburns", "Smiling", "Wearing_Lipstick"],
    "accessories": ["Wearing_Earrings", "Wearing_Hat", "Wearing_Necklace", "Wearing_Necktie"],
}
LABEL_FILES = ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt")
RESTORED_JPEG_QUALITY = 95


def write_subset_labels(data_dir: str, out_dir: str, names: set):
    """Copies CelebA's label files into ``out_dir`` keeping only the rows of ``names`` (the attribute file's
    count line updated)."""
    for label_file in LABEL_FILES:
        src = os.path.join(data_dir, label_file)
        if not os.path.isfile(src):
            continue
        with open(src, newline="") as f:
            lines = f.read().splitlines()
        head = []
        if label_file == "list_attr_celeba.txt":
            head, lines = lines[1:2], lines[2:]
        rows = [line for line in lines if line.split(maxsplit=1)[:1] and line.split(maxsplit=1)[0] in names]
        if label_file == "list_attr_celeba.txt":
            head = [str(len(rows))] + head
        with open(os.path.join(out_dir, label_file), "w", newline="") as f:
            f.write("\r\n".join(head + rows) + "\r\n")


def group_table(heads: dict) -> dict:
    """``{group: {"accuracy", "balanced_accuracy", "n_attributes"}}`` from an evaluator's per-head metrics."""
    out = {}
    for group, names in ATTRIBUTE_GROUPS.items():
        found = [heads[f"celeba__{n}"] for n in names if heads.get(f"celeba__{n}", {}).get("n")]
        if found:
            out[group] = {"accuracy": sum(m["accuracy"] for m in found) / len(found),
                          "balanced_accuracy": sum(m["balanced_accuracy"] for m in found) / len(found),
                          "n_attributes": len(found)}
    return out


def _restore_all(items, conditions, sr, args):
    """Yields ``(condition, uint8 image or JPEG bytes)`` for each condition of one original image."""
    import numpy as np
    from PIL import Image
    import io

    from facezoo.evaluation.generation import bicubic_upscale, degrade
    for original in items:
        small_jpeg = degrade(original, 4, args.blur, args.jpeg)
        small = np.asarray(Image.open(io.BytesIO(small_jpeg)).convert("RGB"))
        out = {"original": original, "degraded": small_jpeg}
        if "bicubic" in conditions:
            out["bicubic"] = bicubic_upscale(small[None], 4)[0]
        if "sr" in conditions:
            out["sr"] = sr.upscale_batch(small[None])[0]
        yield out


def _save(value, path):
    from PIL import Image
    if isinstance(value, bytes):
        with open(path, "wb") as f:
            f.write(value)
    else:
        Image.fromarray(value).save(path, format="JPEG", quality=RESTORED_JPEG_QUALITY)


def build_trees(records, data_dir, root, conditions, sr, args, desc):
    """Writes one CelebA tree per condition under ``root`` for ``records``; returns ``{condition: tree}``."""
    from tqdm.auto import tqdm

    from facezoo.images import load_image
    trees = {c: os.path.join(root, c) for c in conditions}
    done = os.path.join(root, "done.json")
    if os.path.isfile(done) and json.load(open(done)) == {"n": len(records), "conditions": list(conditions),
                                                          "blur": args.blur, "jpeg": args.jpeg}:
        return trees  # written by an earlier run with the same settings
    for tree in trees.values():
        os.makedirs(os.path.join(tree, "img_align_celeba"), exist_ok=True)
    names = [os.path.basename(r.image) for r in records]
    images = (load_image(r.image, name=r.image) for r in records)
    for name, versions in tqdm(zip(names, _restore_all(images, conditions, sr, args)), total=len(records),
                               desc=desc, unit="face", file=sys.stderr):
        for c in conditions:
            _save(versions[c], os.path.join(trees[c], "img_align_celeba", name))
    for tree in trees.values():
        write_subset_labels(data_dir, tree, set(names))
    with open(done, "w") as f:
        json.dump({"n": len(records), "conditions": list(conditions), "blur": args.blur, "jpeg": args.jpeg}, f)
    return trees


def celeba_part(args, attribute_model, sr, conditions):
    from facezoo import zoo
    from facezoo.evaluation.report import evaluate, evaluation_records
    card = zoo.model_card(attribute_model)
    val_percent = card.training_data.get("val_percent", 20)
    records = evaluation_records("celeba", args.data_dir, "val", val_percent)
    if args.max_images:
        records = records[: args.max_images]
    trees = build_trees(records, args.data_dir, os.path.join(args.out, "celeba"), conditions, sr, args,
                        "degrade + restore CelebA")
    results = {}
    for condition, tree in trees.items():
        report = evaluate(attribute_model, tree, dataset="celeba", val_percent=val_percent, max_misclassified=0,
                          plots=False, latency=False)
        results[condition] = {"n_images": report["n_images"], "mean_accuracy": report["summary"]["mean_accuracy"],
                              "mean_balanced_accuracy": report["summary"]["mean_balanced_accuracy"],
                              "groups": group_table(report["heads"]),
                              "attributes": {k.split("__", 1)[1]: v["accuracy"] for k, v in report["heads"].items()
                                             if v.get("n")}}
    return results, val_percent


def finetune_part(args, attribute_model, sr, val_percent):
    """Fine-tunes the attribute model on SR-restored training faces; evaluates it on restored validation faces."""
    from facezoo import zoo
    from facezoo.data import READERS
    from facezoo.evaluation.report import evaluate
    from facezoo.train.config import RecipeConfig
    from facezoo.train.runner import run_dmtl
    card = zoo.model_card(attribute_model)
    records = list(READERS["celeba"](args.data_dir).records())
    trees = build_trees(records, args.data_dir, os.path.join(args.out, "celeba_all"), ["sr"], sr, args,
                        "restore all CelebA faces")
    weights = os.path.join(zoo.model_dir(attribute_model), card.weights_file)
    # The same network, so every weight warm-starts.
    config = zoo.load(attribute_model, backend="keras", fold_batchnorm=False).model.dmtl_config
    cfg = RecipeConfig(datasets=("celeba",), out=os.path.join(args.out, "finetune"), data_dirs={"celeba": trees["sr"]},
                       epochs=args.finetune_epochs, batch_size=args.finetune_batch, input_size=tuple(config.input_size),
                       backbone=config.backbone, width=config.width, dropout=config.dropout,
                       learning_rate=args.finetune_lr, val_percent=val_percent, init=weights,
                       max_steps_per_epoch=args.finetune_max_steps, seed=0)
    run_dmtl(cfg, data_root=os.path.dirname(args.data_dir), verbose=True)
    sr_val = os.path.join(args.out, "celeba", "sr")
    report = evaluate(os.path.join(cfg.out, "best.keras"), sr_val, dataset="celeba", val_percent=val_percent,
                      max_misclassified=0, plots=False, latency=False)
    return {"n_images": report["n_images"], "mean_accuracy": report["summary"]["mean_accuracy"],
            "mean_balanced_accuracy": report["summary"]["mean_balanced_accuracy"],
            "groups": group_table(report["heads"]), "command": cfg.command()}


def lfw_items(lfw_dir: str, limit: int | None):
    """``[(path, "male" | "female")]`` of the staged LFW photos (evenly spaced when ``limit``)."""
    gender = {}
    for fname, g in (("male_names.txt", "male"), ("female_names.txt", "female")):
        with open(os.path.join(lfw_dir, fname)) as f:
            gender.update({line.strip(): g for line in f if line.strip()})
    items = []
    for name in sorted(gender):
        path = os.path.join(lfw_dir, "lfw-deepfunneled", name.rsplit("_", 1)[0], name)
        if os.path.isfile(path):
            items.append((path, gender[name]))
    return items[::max(1, len(items) // limit)][:limit] if limit else items


def lfw_part(args, attribute_model, sr, conditions):
    import io

    import numpy as np
    from PIL import Image
    from tqdm.auto import tqdm

    from facezoo.face.analyze import FaceAnalyzer
    from facezoo.images import load_image
    items = lfw_items(args.lfw_dir, args.lfw_images)
    analyzer = FaceAnalyzer([attribute_model])
    truth = np.array([g == "male" for _p, g in items])
    predicted = {c: [] for c in conditions}
    batch = 16
    for start in tqdm(range(0, len(items), batch), desc="LFW", unit="batch", file=sys.stderr):
        originals = [load_image(p, name=p) for p, _g in items[start:start + batch]]
        versions = list(_restore_all(originals, conditions, sr, args))
        for c in conditions:
            photos = [np.asarray(Image.open(io.BytesIO(v[c])).convert("RGB")) if isinstance(v[c], bytes) else v[c]
                      for v in versions]
            for r in analyzer.analyze(photos, min_face=8, max_faces=1, errors="collect"):
                faces = r.get("faces") or []
                predicted[c].append(faces[0]["attributes"]["Male"]["present"] if faces else None)
    out = {}
    for c in conditions:
        found = np.array([p is not None for p in predicted[c]])
        pred = np.array([bool(p) for p in predicted[c]])
        t, p = truth[found], pred[found]
        balanced = [np.mean(p[t == v] == v) for v in (True, False) if np.any(t == v)]
        out[c] = {"n_photos": len(items), "found": float(found.mean()),
                  "accuracy": float(np.mean(p == t)) if found.any() else None,
                  "balanced_accuracy": float(np.mean(balanced)) if balanced else None}
    return out


def format_tables(result: dict) -> str:
    lines = []
    celeba = result.get("celeba", {})
    if celeba:
        conditions = list(celeba)
        lines.append(f"CelebA validation ({celeba[conditions[0]]['n_images']} faces), "
                     f"{result['attribute_model']}: accuracy per attribute group (balanced in brackets)")
        lines.append(f"{'group':14s} " + " ".join(f"{c:>17s}" for c in conditions))
        for group in ATTRIBUTE_GROUPS:
            cells = [celeba[c]["groups"].get(group) for c in conditions]
            lines.append(f"{group:14s} " + " ".join(f"{g['accuracy']:8.2%} ({g['balanced_accuracy']:6.2%})"
                                                      if g else f"{'-':>17s}" for g in cells))
        lines.append(f"{'all 40':14s} " + " ".join(f"{celeba[c]['mean_accuracy']:8.2%} "
                                                   f"({celeba[c]['mean_balanced_accuracy']:6.2%})" for c in conditions))
    if "finetuned_on_sr" in result:
        f = result["finetuned_on_sr"]
        lines.append(f"fine-tuned on SR-restored faces, on SR-restored validation: {f['mean_accuracy']:.2%} "
                     f"({f['mean_balanced_accuracy']:.2%})")
    if "lfw" in result:
        lines.append("")
        lines.append("LFW Male (CelebA-trained) through analyze: accuracy / balanced / faces found")
        for c, m in result["lfw"].items():
            acc = f"{m['accuracy']:.2%} / {m['balanced_accuracy']:.2%}" if m["accuracy"] is not None else "-"
            lines.append(f"{c:10s} {acc:>20s} / {m['found']:.1%}  (n={m['n_photos']})")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = default_data_root(__file__)
    p.add_argument("--sr-model", default="srgan_face_x4", help="super-resolution model, or 'none' (bicubic only)")
    p.add_argument("--attribute-model", default="dmtl_celeba", help="CelebA attribute model (default dmtl_celeba)")
    p.add_argument("--data-dir", default=os.path.join(root, "celeba"), help="CelebA root")
    p.add_argument("--lfw-dir", default=os.path.join(root, "lfw"), help="LFW root ('none' to skip)")
    p.add_argument("--max-images", type=int, default=None, help="CelebA validation faces used (default all)")
    p.add_argument("--lfw-images", type=int, default=500, help="LFW photos used, evenly spaced (default 500)")
    p.add_argument("--blur", type=float, default=1.0, help="Gaussian blur sigma in pixels before downscaling")
    p.add_argument("--jpeg", type=int, default=30, help="JPEG quality of the degraded faces (default 30)")
    p.add_argument("--finetune-epochs", type=int, default=0, help="fine-tune on SR-restored training faces")
    p.add_argument("--finetune-lr", type=float, default=2e-4)
    p.add_argument("--finetune-batch", type=int, default=64)
    p.add_argument("--finetune-max-steps", type=int, default=None, help="cap steps per fine-tuning epoch")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--out", default="runs/sr_transfer", help="output folder")
    args = p.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is not a directory")
    if args.lfw_dir != "none" and not os.path.isfile(os.path.join(args.lfw_dir, "male_names.txt")):
        p.error(f"--lfw-dir {args.lfw_dir}: no male_names.txt there (give 'none' to skip LFW)")
    if not 1 <= args.jpeg <= 100 or args.blur < 0:
        p.error(f"--jpeg must be in 1..100 and --blur >= 0, got {args.jpeg} and {args.blur}")
    if args.finetune_epochs and args.sr_model == "none":
        p.error("--finetune-epochs needs an --sr-model")

    from facezoo.errors import UserError
    from facezoo.train.runner import set_threads
    set_threads(args.threads)
    import facezoo
    try:
        sr = None if args.sr_model == "none" else facezoo.load(args.sr_model)
        if sr is not None and sr.card.task != "super_resolution":
            p.error(f"--sr-model {args.sr_model} is a {sr.card.task} model")
        conditions = ["original", "degraded", "bicubic"] + (["sr"] if sr else [])
        os.makedirs(args.out, exist_ok=True)
        result = {"attribute_model": args.attribute_model, "sr_model": args.sr_model,
                  "degradation": {"blur_sigma": args.blur, "scale": 4, "jpeg_quality": args.jpeg,
                                  "restored_jpeg_quality": RESTORED_JPEG_QUALITY}}
        result["celeba"], val_percent = celeba_part(args, args.attribute_model, sr, conditions)
        if args.finetune_epochs:
            result["finetuned_on_sr"] = finetune_part(args, args.attribute_model, sr, val_percent)
        if args.lfw_dir != "none":
            result["lfw"] = lfw_part(args, args.attribute_model, sr, conditions)
    except UserError as e:
        p.error(str(e))
    with open(os.path.join(args.out, "sr_transfer.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(format_tables(result))
    print(f"\nwrote {os.path.join(args.out, 'sr_transfer.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
