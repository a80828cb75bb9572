"""Gender from the generic ``train.csv``/``test.csv`` layout, with a submission in ``sampleSubmit.csv`` format.

Layout (``facezoo.data.generic_csv``): ``train.csv`` (``id,label``) with ``train/<id>.jpg``,
``test.csv`` with ``test/<id>.jpg``, optionally ``sampleSubmit.csv`` (its ids and column order
are used for the submission; without it, ``test.csv``'s order and ``id,label``).

``--val-percent`` of the training images (chosen by a hash of the file name, the same on every
machine) are held out; each model keeps its best epoch on them. With ``--ensemble N`` N models
are trained with seeds 0..N-1 and combined three ways (``facezoo.train.ensemble``): majority
vote, vote weighted by validation accuracy, and a small head trained on the concatenated trunk
features of the training images; ``ensemble.json`` gives the validation accuracy of each member
and each method, and ``--ensemble-method`` picks the one used for the submission.

Writes into ``--out``: ``member_<i>/`` (a training run each), ``ensemble.json`` and
``submission.csv``.

Examples:
    python recipes/train_gender_csv.py --data-dir ~/data/gender --out runs/gender
    python recipes/train_gender_csv.py --data-dir ~/data/gender --ensemble 3 --out runs/gender3
"""
import argparse
import csv
import json
import math
import os
import sys

from facezoo.train.recipe_args import add_training_arguments

METHODS = ("vote", "weighted_vote", "feature_concat")  # facezoo.train.ensemble.METHODS, without importing TF


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(p, data_dir="data/gender", epochs=30, batch_size=64, input_size="96", width=0.5,
                           out="runs/gender_csv")
    p.add_argument("--val-percent", type=int, default=20, help="share of training images held out (default 20)")
    p.add_argument("--ensemble", type=int, default=1, help="number of models to train and combine (default 1)")
    p.add_argument("--ensemble-method", choices=METHODS, default="weighted_vote",
                   help="how the submission combines the models when --ensemble > 1 (default weighted_vote)")
    p.add_argument("--label-format", choices=("index", "name"), default="index",
                   help="write class indices (0, 1) or names (male, female) into the submission (default index)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is not a directory (it needs train.csv, train/, test.csv, test/)")
    if args.ensemble < 1:
        p.error(f"--ensemble must be >= 1, got {args.ensemble}")
    if not 0 < args.val_percent < 100:
        p.error(f"--val-percent must be in 1..99, got {args.val_percent}")

    from facezoo.attributes import GENDER_CSV
    from facezoo.data.augment import DEFAULT_AUGMENT
    from facezoo.data.generic_csv import IMAGE_EXTENSIONS, CsvFolderReader
    from facezoo.data.pipeline import from_records
    from facezoo.data.splits import split_records
    from facezoo.models.dmtl import DmtlConfig, dmtl, output_name
    from facezoo.train import ensemble
    from facezoo.tasks.dmtl import DmtlTask, for_model
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from facezoo.train.runner import set_threads
    from facezoo.train.strategy import choose_strategy, is_chief

    set_threads(args.threads)
    reader = CsvFolderReader(args.data_dir)
    records = list(reader.records())
    labelled = [r for r in split_records(records, val_percent=args.val_percent) if r.split != "test"]
    train_records = [r for r in labelled if r.split == "train"]
    val_records = [r for r in labelled if r.split == "val"]
    test_records = [r for r in records if r.split == "test"]
    if not train_records or not val_records:
        p.error(f"{len(labelled)} labelled images give {len(train_records)} to train and {len(val_records)} to "
                f"validate; both need some (change --val-percent or add images)")
    if not test_records:
        p.error(f"{args.data_dir} has no test.csv images to predict")
    print(f"gender: {len(train_records)} train, {len(val_records)} validation, {len(test_records)} test images",
          flush=True)

    name = GENDER_CSV.name
    output = output_name(name, "gender")
    config = DmtlConfig(backbone="resnet18", input_size=args.input_size, width=args.width, heads=GENDER_CSV)
    strategy = choose_strategy()

    def dataset(recs, training, seed=0):
        ds = from_records(recs, GENDER_CSV, image_size=args.input_size, batch_size=args.batch_size if training else 128,
                          training=training, augment=DEFAULT_AUGMENT if training else None, seed=seed)
        return for_model(ds.repeat() if training else ds, name, config)

    val_data, test_data = dataset(val_records, False), dataset(test_records, False)
    steps = math.ceil(len(train_records) / args.batch_size)
    if args.max_steps_per_epoch:
        steps = min(steps, args.max_steps_per_epoch)
    members = []
    for i in range(args.ensemble):
        seed = args.seed + i
        train_config = TrainConfig(epochs=args.epochs, steps_per_epoch=steps, learning_rate=args.lr,
                                   weight_decay=args.weight_decay, monitor=f"{name}/mean_accuracy", seed=seed)
        trainer = Trainer(DmtlTask(lambda: dmtl(config)), dataset(train_records, True, seed), train_config,
                          os.path.join(args.out, f"member_{i}"), global_batch=args.batch_size, strategy=strategy,
                          val_data={name: val_data})
        trainer.fit()
        trainer.restore_best()
        members.append(trainer.model)

    val_outputs = ensemble.member_outputs(members, val_data, output)
    test_outputs = ensemble.member_outputs(members, test_data, output)
    accuracies = ensemble.member_accuracies(val_outputs)
    report = {"members": {f"member_{i}": float(a) for i, a in enumerate(accuracies)}}
    if args.ensemble == 1:
        predicted = test_outputs.votes[0]
        method = "single model"
    else:
        weights = ensemble.accuracy_weights(accuracies)
        train_outputs = ensemble.member_outputs(members, dataset(train_records, False), output)
        head = ensemble.train_concat_head(train_outputs.features, train_outputs.labels, train_outputs.mask,
                                          num_classes=GENDER_CSV["gender"].num_classes, seed=args.seed)
        report["weights"] = [float(w) for w in weights]
        report["methods"] = {m: ensemble.accuracy(ensemble.combine(m, val_outputs, weights=weights, head=head),
                                                  val_outputs.labels, val_outputs.mask) for m in METHODS}
        method = args.ensemble_method
        predicted = ensemble.combine(method, test_outputs, weights=weights, head=head)
    report["submission_method"] = method
    print("validation accuracy: " + json.dumps(report), flush=True)
    if not is_chief():
        return 0
    with open(os.path.join(args.out, "ensemble.json"), "w") as f:
        json.dump(report, f, indent=1)

    # Records carry the image path; the submission needs the id it came from (train/<id>.jpg or test/<id>).
    by_source = {r.source: int(c) for r, c in zip(test_records, predicted)}

    def source_of(image_id):
        file_name = image_id if image_id.lower().endswith(IMAGE_EXTENSIONS) else f"{image_id}.jpg"
        return os.path.join("test", file_name)

    if os.path.exists(os.path.join(args.data_dir, "sampleSubmit.csv")):
        columns, ids = reader.submission_template()
    else:
        columns, ids = ["id", "label"], [os.path.splitext(os.path.basename(r.source))[0] for r in test_records]
    if sorted(c.lower() for c in columns) != ["id", "label"]:
        raise SystemExit(f"sampleSubmit.csv has columns {columns}; this recipe writes id,label submissions")
    missing = [i for i in ids if source_of(i) not in by_source]
    if missing:
        raise SystemExit(f"sampleSubmit.csv lists {len(missing)} id(s) without a test image, e.g. {missing[:3]}")
    classes = GENDER_CSV["gender"].classes
    path = os.path.join(args.out, "submission.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for image_id in ids:
            label = by_source[source_of(image_id)]
            value = classes[label] if args.label_format == "name" else label
            writer.writerow([image_id if c.lower() == "id" else value for c in columns])
    print(f"wrote {path} ({len(ids)} rows, {method})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
