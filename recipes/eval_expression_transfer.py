"""Evaluate a shipped expression model on CK+ (cross-data-set: trained on FER-2013, tested on CK+48).

Run from the repository root. Every CK+48 image is described by the model (they are 48x48 grey face crops in
roughly FER-2013's framing); accuracy is given on the 6 classes both data sets share and on all 7 of CK+
(contempt, which FER-2013 lacks, always counts as wrong). ``--card`` writes the result onto the model's card
under ``metrics["cross_dataset"]``.

``--align auto`` (default) gives the crops as they are to a model in FER-2013's framing (``expression_fer``) and
re-frames them for any other (``dmtl_face``: the largest face found by RetinaFace on a 2x enlargement, warped onto
the card's framing, the faces it misses aligned by the mean landmarks of those it found -- exactly as the
model's FER-2013 training faces were; ``facezoo.data.face_crops.aligned_crops``, cached under
``$FACEZOO_CACHE/aligned``).

Examples:
    python recipes/eval_expression_transfer.py --model expression_fer
    python recipes/eval_expression_transfer.py --model dmtl_face --card --out eval/ckplus.json
"""
import argparse
import json
import os
import sys

from facezoo.train.recipe_args import default_data_root


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="expression_fer", help="shipped expression model (default expression_fer)")
    p.add_argument("--data-dir", help="CK+ root with CK+48/ (default: $FACEZOO_DATA or ../shared/data, then /ckplus)")
    p.add_argument("--card", action="store_true", help="write the result onto the model's card")
    p.add_argument("--exported", default=os.path.join(os.path.dirname(__file__), "..", "exported"))
    p.add_argument("--align", choices=("auto", "none", "detect"), default="auto",
                   help="none: the crops as they are; detect: re-framed onto the card's framing; auto (default): "
                        "none for a model in FER-2013's framing, detect otherwise")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    data_dir = args.data_dir or os.path.join(default_data_root(__file__), "ckplus")
    if not os.path.isdir(data_dir):
        p.error(f"--data-dir {data_dir} is not a directory")

    import facezoo
    from facezoo.attributes import CKPLUS
    from facezoo.data import READERS
    from facezoo.evaluation.cross_dataset import evaluate_expression_transfer
    folder = os.path.join(args.exported, args.model)
    model = facezoo.load(args.model, directory=folder)
    records = list(READERS["ckplus"](data_dir).records())
    framing = model.spec.framing.name if model.spec.framing is not None else None
    align = args.align if args.align != "auto" else ("none" if framing in (None, "fer2013_crop") else "detect")
    crops = None
    if align == "detect":
        from facezoo.data.face_crops import aligned_crops
        from facezoo.data.face_union import UPSCALE_BELOW, default_cache_dir
        crops, found = aligned_crops([r.image for r in records], model.spec, default_cache_dir(),
                                     upscale_below=UPSCALE_BELOW, fallback="mean")
    report = evaluate_expression_transfer(model, records, CKPLUS, crops=crops)
    report["align"] = align
    if crops is not None:
        report["faces_found"] = float(found.mean())
    command = f"python recipes/eval_expression_transfer.py --model {args.model}" + (
        f" --align {args.align}" if args.align != "auto" else "")
    report["command"] = command
    print(json.dumps({k: v for k, v in report.items() if k != "confusion"}, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    if args.card:
        from facezoo.zoo import ModelCard
        from facezoo.zoo.package import finalize_files
        card = ModelCard.from_json(os.path.join(folder, "card.json"))
        card.metrics["cross_dataset"] = {"ckplus": {k: report[k] for k in
                                                    ("n", "n_shared", "accuracy_shared", "accuracy_all", "per_class",
                                                     "align", "faces_found") if k in report}}
        card.notes += (f" CK+48 (777 images, all 7 classes, never trained or chosen on; crops "
                       f"{'re-framed by our detector' if align == 'detect' else 'as they are'}) measured by "
                       f"`{command}`: "
                       f"{report['accuracy_shared']:.4f} on the {len(report['shared_classes'])} shared classes, "
                       f"{report['accuracy_all']:.4f} on all 7 (contempt is not a FER-2013 class).")
        finalize_files(folder, card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
