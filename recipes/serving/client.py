"""A TF Serving REST client for an exported facezoo model, and the same answer computed locally.

Builds the ``:predict`` request for face images (``{"instances": [{"b64": ...}]}`` on the
``serving_default`` signature) and either posts it to a running ``tensorflow/serving`` (``--url``) or runs
the exported SavedModel's signature here (``--saved-model``) and prints the answer in TF Serving's row
format (``{"predictions": [{output: value, ...}]}``), so you can see what a server will answer.

    python recipes/serving/client.py face.jpg --url http://localhost:8501/v1/models/dmtl_utkface:predict
    python recipes/serving/client.py face.jpg --saved-model serving/dmtl_utkface/1
"""
import argparse
import base64
import json
import sys
import urllib.request


def request_body(paths) -> dict:
    """The REST ``:predict`` body for image files (binary inputs go as ``{"b64": ...}``)."""
    instances = []
    for p in paths:
        with open(p, "rb") as f:
            instances.append({"b64": base64.b64encode(f.read()).decode("ascii")})
    return {"signature_name": "serving_default", "instances": instances}


def local_answer(saved_model: str, paths) -> dict:
    """What TF Serving answers for ``request_body(paths)``, computed by running the signature here."""
    import tensorflow as tf

    images = [base64.b64decode(i["b64"]) for i in request_body(paths)["instances"]]
    outputs = tf.saved_model.load(saved_model).signatures["serving_default"](image_bytes=tf.constant(images))
    rows = []
    for i in range(len(images)):
        row = {}
        for name in sorted(outputs):
            value = outputs[name].numpy()[i]
            row[name] = value.decode() if isinstance(value, bytes) else value.tolist()
        rows.append(row)
    return {"predictions": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the model's :predict URL on a running tensorflow/serving")
    where.add_argument("--saved-model", help="an exported version folder, run locally")
    p.add_argument("--print-request", action="store_true", help="print the request body (images shortened)")
    args = p.parse_args(argv)
    body = request_body(args.images)
    if args.print_request:
        short = {**body, "instances": [{"b64": i["b64"][:24] + "..."} for i in body["instances"]]}
        print(json.dumps(short))
    if args.url:
        req = urllib.request.Request(args.url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
    else:
        answer = local_answer(args.saved_model, args.images)
    print(json.dumps(answer, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
