"""Measure a data set's face framing: where the detector puts the five landmarks in a model's input.

Run from the repository root. The training images of the data set are read as training reads them, the
shipped detector finds the landmarks, ``fit_landmarks`` moves them the way ``fit_to_input`` moves the pixels
to the model's input, and the median over the images (robust to a few bad detections) becomes the framing
``facezoo.face.align.align_to_spec`` aligns faces to. Only training images are used: validation images
never choose anything here. Measuring with the detector that ``analyze`` uses means its own landmark
convention cancels out.

Examples:
    python recipes/measure_framing.py --dataset utkface --input-size 109x89 --limit 2000
    python recipes/measure_framing.py --dataset celeba --card dmtl_celeba     # write it onto a shipped card
"""
import argparse
import json
import os
import sys

from facezoo.train.recipe_args import default_data_root, parse_size, positive_int


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="data set name (celeba, utkface, ...)")
    p.add_argument("--data-dir", help="data set root (default: $FACEZOO_DATA or ../shared/data, then /<dataset>)")
    p.add_argument("--input-size", type=parse_size, default=(109, 89), help="model input HxW (default 109x89)")
    p.add_argument("--limit", type=positive_int, default=2000, help="training images to measure (default 2000)")
    p.add_argument("--card", help="write the framing onto this shipped model's card (exported/<name>)")
    p.add_argument("--exported", default=os.path.join(os.path.dirname(__file__), "..", "exported"))
    p.add_argument("--out", help="write the measurement as JSON here")
    args = p.parse_args(argv)
    data_dir = args.data_dir or os.path.join(default_data_root(__file__), args.dataset)
    if not os.path.isdir(data_dir):
        p.error(f"--data-dir {data_dir} is not a directory")

    import numpy as np
    from tqdm.auto import tqdm

    from facezoo.data import READERS
    from facezoo.data.splits import split_records
    from facezoo.face.align import fit_landmarks
    from facezoo.face.detect import get_detector
    from facezoo.images import ImageError, load_image
    from facezoo.preprocessing import FaceFraming

    records = [r for r in split_records(READERS[args.dataset](data_dir).records()) if r.split == "train"]
    records = records[::max(1, len(records) // args.limit)][:args.limit]
    detector = get_detector()
    h, w = args.input_size
    points, missed = [], 0
    for start in tqdm(range(0, len(records), 32), desc="detect", unit="batch"):
        batch = []
        for r in records[start:start + 32]:
            try:
                batch.append(load_image(r.image))
            except ImageError:
                missed += 1
        for image, faces in zip(batch, detector.detect(batch, max_faces=1)):
            if not faces:
                missed += 1
                continue
            moved = fit_landmarks(faces[0].landmarks, image.shape[:2], (h, w))
            points.append((moved + 0.5) / np.array([w, h], np.float32))  # pixel index -> fraction
    points = np.stack(points)
    median = np.median(points, axis=0)
    spread = np.median(np.abs(points - median), axis=0)
    framing = FaceFraming(
        f"{args.dataset}_{'aligned' if args.dataset == 'celeba' else 'crop'}",
        tuple((round(float(x), 4), round(float(y), 4)) for x, y in median),
        f"median landmarks of {len(points)} {args.dataset} training images found by the shipped RetinaFace "
        f"detector, after fit_to_input to {h}x{w} (recipes/measure_framing.py; {missed} images without a face)")
    report = {"framing": framing.to_dict(), "images": len(points), "missed": missed,
              "median_abs_deviation": spread.round(4).tolist()}
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    if args.card:
        import dataclasses

        from facezoo.zoo import ModelCard
        from facezoo.zoo.package import finalize_files
        folder = os.path.join(args.exported, args.card)
        card = ModelCard.from_json(os.path.join(folder, "card.json"))
        spec = card.spec
        if spec.input_size != (h, w):
            p.error(f"{args.card} takes {spec.input_size}, not --input-size {h}x{w}")
        card.preprocessing = dataclasses.replace(spec, framing=framing).to_dict()
        finalize_files(folder, card)
        print(f"wrote the framing onto {folder}/card.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
