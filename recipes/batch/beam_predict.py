"""Run an exported facezoo SavedModel over a folder (or bucket) of images with Apache Beam's RunInference.

    facezoo export dmtl_celeba --format saved_model --out serving
    python recipes/batch/beam_predict.py --model serving/dmtl_celeba --input crops/ --output results/celeba
    # -> results/celeba-00000-of-00001.jsonl: one JSON object per image

The pipeline: match the image files under ``--input`` (a folder, searched recursively, or a glob; a ``gs://``
or ``s3://`` path works where Beam has that file system) -> read each file -> ``prepare_image`` (header checks;
files the graph cannot decode as facezoo would -- EXIF-rotated, WebP, TIFF, CMYK, 16-bit, palette, very large --
are decoded by ``facezoo.images.load_image`` and re-encoded as PNG; unreadable files become error lines) ->
``RunInference`` with ``SavedModelHandler`` (the SavedModel's ``serving_default`` signature on batches of
encoded images: decoding, cropping, resizing, scaling and the decoding of every head happen in the graph)
-> one JSON line per image -> text files ``OUTPUT-SSSSS-of-NNNNN.jsonl``.

Each line is ``{"file": path, "model": name, "attributes": {attr: {...}}}`` with the fields the SavedModel
answers per head (``probability``/``present``, ``label``/``index``/``probabilities`` named by class,
``value``, ``confidence``/``abstain``), or ``{"file": path, "error": "..."}`` for a file that could not be
read. The model is a face-crop model, as ``facezoo predict``: give it crops in the model's framing.

Options that are not listed below go to Beam (``--runner``, ``--direct_num_workers``, ``--project`` ...): the
same pipeline runs on the DirectRunner (the default), Dataflow, Flink or Spark. Workers need this file's
requirements (``pip install "facezoo[cpu,batch]"``; on Dataflow pass ``--requirements_file`` or a container
image) and must be able to read ``--model`` (a bucket path for a cluster).

Exit status: 0 when at least one image was described, 1 when none was (no images, or every one failed),
2 for bad arguments.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys

import numpy as np

# The formats the graph's decoder reads the way facezoo.images.load_image does, when the file is plain:
# 8-bit RGB or grey JPEG, 8-bit RGB(A)/grey(+alpha) PNG, RGB BMP. Anything else is decoded by facezoo first.
PASS_THROUGH_MODES = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "RGBA", "L", "LA"), "BMP": ("RGB",)}
# Output fields of the SavedModel per head (facezoo.export.serving), longest first so "probabilities"
# is found before "probability" is tried.
FIELDS = ("probabilities", "probability", "confidence", "present", "abstain", "label", "index", "value")
COUNTER_NAMESPACE = "facezoo"

_logging_disabled = logging.root.manager.disable
logging.disable(logging.WARNING)  # Beam's import warns about optional cloud clients it does not find
try:  # Beam is optional: without it the element functions below still work (and are tested).
    import apache_beam as beam
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult
except ImportError:  # pragma: no cover - exercised where apache-beam is not installed
    beam = None
    ModelHandler = object
    PredictionResult = None
finally:
    logging.disable(_logging_disabled)


class BatchUsageError(Exception):
    """A bad argument: printed as one line, exit status 2."""


def prepare_image(data: bytes, name: str) -> bytes:
    """Bytes the SavedModel's ``serving_default`` signature decodes to the pixels facezoo would use.

    Plain 8-bit JPEG, PNG and BMP files without an EXIF rotation, whose sides lie within facezoo's limits
    and its working size, are returned unchanged (nothing is decoded here: the header is read). Every other
    file is decoded by ``facezoo.images.load_image`` (EXIF orientation, any mode, alpha onto white, first frame,
    shrinking of huge images) and re-encoded as lossless PNG.

    Raises:
        facezoo.errors.ImageError: ``"<name>: <problem>"`` for anything that is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    from facezoo.images import MIN_SIDE, WORKING_SIDE, ImageError, load_image
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, mode, (w, h) = img.format, img.mode, img.size
            rotated = img.getexif().get(0x0112, 1) != 1
            frames = getattr(img, "n_frames", 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        fmt = None  # load_image names the problem
    if (fmt in PASS_THROUGH_MODES and mode in PASS_THROUGH_MODES[fmt] and not rotated and frames == 1
            and MIN_SIDE <= min(w, h) and max(w, h) <= WORKING_SIDE):
        return data
    pixels = load_image(data, name=name)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def split_outputs(outputs: dict) -> list[dict]:
    """The signature's batched outputs (name -> array with the batch first) -> one dict of numpy values per row."""
    arrays = {k: np.asarray(getattr(v, "numpy", lambda v=v: v)()) for k, v in outputs.items()}
    sizes = {a.shape[0] for a in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"outputs disagree on the batch size: {sorted(sizes)}")
    return [{k: a[row] for k, a in arrays.items()} for row in range(sizes.pop())]


def _json_value(value):
    value = np.asarray(value)
    if value.dtype.kind in ("S", "O"):
        items = [v.decode() if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]
        return items[0] if value.ndim == 0 else items
    if value.dtype.kind == "b":
        return bool(value) if value.ndim == 0 else [bool(v) for v in value]
    if value.dtype.kind in ("i", "u"):
        return int(value) if value.ndim == 0 else [int(v) for v in value]
    return round(float(value), 6) if value.ndim == 0 else [round(float(v), 6) for v in value]


def class_names(card: dict | None) -> dict[str, list]:
    """Attribute name (and ``<dataset>__<attr>``) -> its class names, from a model card (``{}`` without one)."""
    names: dict[str, list] = {}
    for space in (card or {}).get("label_spaces", []):
        for attr in space.get("attributes", []):
            names.setdefault(attr["name"], list(attr.get("classes") or []))
            names[f"{space['name']}__{attr['name']}"] = list(attr.get("classes") or [])
    return names


def describe_row(row: dict, classes: dict | None = None) -> dict:
    """One image's outputs (``<attr>_<field>`` -> value) -> ``{attr: {field: JSON value}}``.

    ``probabilities`` become ``{class: p}`` when ``classes`` (from ``class_names``) names as many classes.
    """
    classes = classes or {}
    out: dict[str, dict] = {}
    for key in sorted(row):
        field = next((f for f in FIELDS if key.endswith("_" + f)), None)
        if field is None:
            raise ValueError(f"unexpected output {key!r}: not <attribute>_<one of {', '.join(FIELDS)}>")
        attr = key[:-len(field) - 1]
        value = _json_value(row[key])
        names = classes.get(attr)
        if field == "probabilities" and names and len(names) == len(value):
            value = dict(zip(names, value))
        out.setdefault(attr, {})[field] = value
    return out


def is_error(inference) -> bool:
    """Whether a handler's answer for one image is ``{"error": message}`` rather than its outputs."""
    return isinstance(inference, dict) and isinstance(inference.get("error"), str)


def result_line(file: str, inference, *, model: str, classes: dict | None = None) -> str:
    """The JSON line of one image: its attributes, or ``{"file", "error"}`` when inference reported one."""
    if is_error(inference):
        return error_line(file, f"{file}: {inference['error']}")
    return json.dumps({"file": file, "model": model, "attributes": describe_row(inference, classes)})


def error_line(file: str, message: str) -> str:
    return json.dumps({"file": file, "error": message})


def resolve_model_dir(path: str) -> str:
    """A SavedModel version folder (``.../<name>/<version>``) or a model folder (its highest version).

    Remote paths (``gs://...``) must name the version folder and are not checked here.
    """
    if "://" in path:
        return path
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise BatchUsageError(f"--model {path}: no such folder (export one with facezoo export NAME "
                              "--format saved_model --out DIR, then give DIR/NAME)")
    versions = sorted((int(v) for v in os.listdir(path)
                       if v.isdigit() and os.path.isfile(os.path.join(path, v, "saved_model.pb"))))
    if not versions and os.path.isfile(os.path.join(path, "models.config")):
        names = sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n)))
        raise BatchUsageError(f"--model {path}: is a serving folder of several models ({', '.join(names)}); "
                              f"give one of them, e.g. {os.path.join(path, names[0] if names else 'NAME')}")
    if not versions:
        raise BatchUsageError(f"--model {path}: holds no SavedModel (no saved_model.pb in it or in a numbered "
                              "version folder); give DIR/NAME from facezoo export --format saved_model")
    return os.path.join(path, str(versions[-1]))


def read_card(model_dir: str) -> dict | None:
    """The card exported beside the SavedModel (``assets.extra/card.json``), or None."""
    path = os.path.join(model_dir, "assets.extra", "card.json")
    try:
        if "://" in path:
            import tensorflow as tf
            with tf.io.gfile.GFile(path) as f:
                return json.load(f)
        with open(path) as f:
            return json.load(f)
    except Exception:  # missing or unreadable (OSError, ValueError, tf.errors.NotFoundError for a remote path)
        return None


def input_pattern(path: str) -> str:
    """A folder becomes ``folder/**`` (every file below it); a glob or a remote path is used as given."""
    from facezoo.images import IMAGE_EXTENSIONS
    if any(c in path for c in "*?[") or ("://" in path and path.lower().endswith(IMAGE_EXTENSIONS)):
        return path
    if "://" not in path:
        if not os.path.exists(path):
            raise BatchUsageError(f"--input {path}: no such file or folder")
        if os.path.isfile(path):
            return path
    return path.rstrip("/") + "/**"


class SavedModelHandler(ModelHandler):
    """Beam ``ModelHandler`` for a facezoo SavedModel: encoded images in, one dict of outputs per image out.

    ``load_model`` is ``tf.saved_model.load`` (Beam's own TensorFlow handler loads with
    ``tf.keras.models.load_model``, which Keras 3 refuses for SavedModels). ``run_inference`` calls the
    signature on the whole batch; if the graph fails on it (a file whose header looked fine but whose data is
    damaged), the batch is run again one image at a time so that only the bad image gets ``{"error": ...}``.
    """

    def __init__(self, model_dir: str, *, signature: str = "serving_default", max_batch_size: int = 32):
        if beam is None:
            raise ImportError("apache-beam is not installed: pip install \"facezoo[batch]\"")
        super().__init__(min_batch_size=1, max_batch_size=max_batch_size)
        self.model_dir = model_dir
        self.signature = signature

    def load_model(self):
        import tensorflow as tf
        loaded = tf.saved_model.load(self.model_dir)
        if self.signature not in loaded.signatures:
            raise ValueError(f"{self.model_dir}: no signature {self.signature!r} (has {sorted(loaded.signatures)})")
        return loaded  # the signature is looked up per call; the loaded object keeps its variables alive

    def _call(self, model, images):
        import tensorflow as tf
        fn = model.signatures[self.signature]
        return split_outputs(fn(image_bytes=tf.constant(list(images), dtype=tf.string)))

    def run_inference(self, batch, model, inference_args=None):
        import tensorflow as tf
        try:
            rows = self._call(model, batch)
        except tf.errors.InvalidArgumentError:
            rows = []
            for image in batch:
                try:
                    rows.extend(self._call(model, [image]))
                except tf.errors.InvalidArgumentError as e:
                    message = e.message.strip().splitlines()[0] if e.message else type(e).__name__
                    rows.append({"error": f"the model graph could not decode the image ({message})"})
        return [PredictionResult(image, row, self.model_dir) for image, row in zip(batch, rows)]

    def get_num_bytes(self, batch) -> int:
        return sum(len(b) for b in batch)

    def get_metrics_namespace(self) -> str:
        return COUNTER_NAMESPACE


def _read_and_prepare(readable_file, max_bytes):
    """``fileio.ReadableFile`` -> ``("ok", (path, bytes))`` or ``("error", json line)``."""
    from facezoo.images import ImageError
    path = readable_file.metadata.path
    size = readable_file.metadata.size_in_bytes
    if size is not None and size > max_bytes:
        return "error", error_line(path, f"{path}: file is {size} bytes, more than max_bytes={max_bytes}")
    try:
        data = readable_file.read()
        return "ok", (path, prepare_image(data, path))
    except ImageError as e:
        return "error", error_line(path, str(e))
    except OSError as e:
        return "error", error_line(path, f"{path}: cannot read ({e})")


def build_pipeline(pipeline, *, pattern: str, model_dir: str, output: str, batch_size: int = 32,
                   num_shards: int = 0, card: dict | None = None):
    """Adds the read -> prepare -> RunInference -> JSON lines -> text files steps to ``pipeline``."""
    from apache_beam.io import fileio
    from apache_beam.metrics import Metrics
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    from facezoo.images import IMAGE_EXTENSIONS, MAX_BYTES
    model = (card or {}).get("name") or os.path.basename(os.path.dirname(model_dir.rstrip("/")))
    classes = class_names(card)
    described = Metrics.counter(COUNTER_NAMESPACE, "images_described")
    failed = Metrics.counter(COUNTER_NAMESPACE, "images_failed")

    def prepare(readable_file):
        kind, value = _read_and_prepare(readable_file, MAX_BYTES)
        if kind == "error":
            failed.inc()
            yield beam.pvalue.TaggedOutput("errors", value)
        else:
            yield value

    def encode(keyed):
        path, result = keyed
        (failed if is_error(result.inference) else described).inc()
        return result_line(path, result.inference, model=model, classes=classes)

    prepared = (pipeline
                | "Match" >> fileio.MatchFiles(pattern)
                | "Images" >> beam.Filter(lambda m: m.path.lower().endswith(IMAGE_EXTENSIONS))
                | "Read" >> fileio.ReadMatches()
                | "Prepare" >> beam.FlatMap(prepare).with_outputs("errors", main="images"))
    handler = KeyedModelHandler(SavedModelHandler(model_dir, max_batch_size=batch_size))
    described_lines = (prepared.images
                       | "RunInference" >> RunInference(handler)
                       | "Encode" >> beam.Map(encode))
    return ((described_lines, prepared.errors)
            | "Lines" >> beam.Flatten()
            | "Write" >> beam.io.WriteToText(output, file_name_suffix=".jsonl", num_shards=num_shards))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="beam_predict.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="the exported SavedModel: DIR/NAME (its highest version) or DIR/NAME/VERSION")
    p.add_argument("--input", required=True, help="a folder of images (searched recursively), a file or a glob")
    p.add_argument("--output", required=True,
                   help="output prefix: writes PREFIX-SSSSS-of-NNNNN.jsonl (one JSON object per image)")
    p.add_argument("--batch-size", type=int, default=32, help="images per model call, at most (default 32)")
    p.add_argument("--num-shards", type=int, default=0,
                   help="output files (default 0: the runner decides; 1 for a single file)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines")
    args, beam_args = p.parse_known_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.num_shards < 0:
        p.error(f"--num-shards must be >= 0, got {args.num_shards}")
    return args, beam_args


def main(argv=None) -> int:
    args, beam_args = parse_args(argv)
    try:
        if beam is None:
            raise BatchUsageError("apache-beam is not installed: pip install \"facezoo[batch]\" "
                                  "(or pip install -r recipes/batch/requirements.txt)")
        model_dir = resolve_model_dir(args.model)
        pattern = input_pattern(args.input)
        out_parent = os.path.dirname(os.path.abspath(args.output))
        if "://" not in args.output:
            os.makedirs(out_parent, exist_ok=True)
            if not os.access(out_parent, os.W_OK):
                raise BatchUsageError(f"--output {args.output}: {out_parent} is not writable")
    except (BatchUsageError, OSError) as e:
        print(f"beam_predict.py: error: {e}", file=sys.stderr)
        return 2
    if not args.verbose:
        from facezoo.cli import quiet_tensorflow
        quiet_tensorflow()
        logging.getLogger().setLevel(logging.ERROR)  # Beam's runner logs a line per missing platform module
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    options = PipelineOptions(beam_args)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, pattern=pattern, model_dir=model_dir, output=args.output, batch_size=args.batch_size,
                   num_shards=args.num_shards, card=read_card(model_dir))
    result = pipeline.run()
    result.wait_until_finish()
    counts = {}
    for name in ("images_described", "images_failed"):
        found = result.metrics().query(MetricsFilter().with_namespace(COUNTER_NAMESPACE).with_name(name))["counters"]
        counts[name] = sum(c.committed or 0 for c in found)
    print(f"{counts['images_described']} images described, {counts['images_failed']} failed -> "
          f"{args.output}-*.jsonl")
    return 0 if counts["images_described"] else 1


if __name__ == "__main__":
    sys.exit(main())
