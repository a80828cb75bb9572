"""Neural style transfer on our own face trunk: paint a content image in the style of another (PNG out).

Optimises the picture so that its deep features match the content image's and the Gram matrices of
several layers' features match the style image's (``facezoo.style``; Gatys et al. 2016), on the trunk
of a shipped attribute model (``--model``, default ``dmtl_celeba``) instead of ImageNet VGG, which
cannot be downloaded here. The defaults use the bundled pair, both ours to ship: the NASA portrait of
Eileen Collins (public domain) and ``style_bands.jpg``, drawn by ``facezoo.style.procedural_style``.

Writes ``--out`` (the result, PNG), ``<out>.costs.json`` (content, style, variation and total cost per
step) and, with ``--side-by-side``, ``<out>.compare.png`` (content | style | result).

Examples:
    python recipes/style_transfer.py --out styled.png
    python recipes/style_transfer.py --content me.jpg --style painting.jpg --steps 300 --size 192 --out me.png
    python recipes/style_transfer.py --optimizer adam --lr 0.02 --steps 400 --out adam.png
"""
import argparse
import json
import os
import sys

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "facezoo", "sample")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default=os.path.join(SAMPLE, "astronaut_full.jpg"),
                   help="content image (default: the bundled NASA portrait)")
    p.add_argument("--style", default=os.path.join(SAMPLE, "style_bands.jpg"),
                   help="style image (default: the bundled procedural style_bands.jpg)")
    p.add_argument("--out", default="styled.png", help="result PNG (default styled.png)")
    p.add_argument("--steps", type=int, default=100, help="optimisation steps (default 100)")
    p.add_argument("--size", type=int, default=128, help="longest side of the result in pixels (default 128)")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    p.add_argument("--lr", type=float, default=0.02, help="Adam step size on pixels in [-1, 1] (default 0.02)")
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=100.0)
    p.add_argument("--variation-weight", type=float, default=10.0, help="total-variation weight (0: none)")
    p.add_argument("--noise", type=float, default=0.0, help="share of uniform noise in the start image (1: noise)")
    p.add_argument("--model", default="dmtl_celeba", help="shipped attribute model whose trunk gives the features")
    p.add_argument("--side-by-side", action="store_true", help="also write <out>.compare.png")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the start image's noise")
    args = p.parse_args(argv)
    if not args.out.lower().endswith(".png"):
        p.error(f"--out {args.out}: the result is a PNG; give a name ending in .png")
    for flag in ("content", "style"):
        if not os.path.isfile(getattr(args, flag)):
            p.error(f"--{flag} {getattr(args, flag)}: no such file")
    if args.steps < 1 or args.size < 16:
        p.error(f"--steps must be >= 1 and --size >= 16, got {args.steps} and {args.size}")
    if not 0 <= args.noise <= 1:
        p.error(f"--noise must be in [0, 1], got {args.noise}")

    from PIL import Image

    from facezoo.errors import UserError
    from facezoo.train.runner import set_threads
    set_threads(args.threads)
    from facezoo import style
    try:
        features = style.StyleFeatures(args.model)
        result = style.transfer(args.content, args.style, features=features, steps=args.steps, size=args.size,
                                content_weight=args.content_weight, style_weight=args.style_weight,
                                variation_weight=args.variation_weight, learning_rate=args.lr,
                                optimizer=args.optimizer, noise_ratio=args.noise, seed=args.seed, progress=True)
    except UserError as e:
        p.error(str(e))
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(result.image).save(args.out, format="PNG")
    stem = os.path.splitext(args.out)[0]
    with open(stem + ".costs.json", "w") as f:
        json.dump({"args": vars(args), "features": {"model": args.model, "content_layer": features.content_layer,
                                                   "style_layers": list(features.style_layers)},
                   "history": result.history}, f, indent=1)
    if args.side_by_side:
        h, w = result.image.shape[:2]
        panels = [Image.open(args.content).convert("RGB").resize((w, h)), Image.open(args.style).convert("RGB")
                  .resize((w, h)), Image.fromarray(result.image)]
        canvas = Image.new("RGB", (3 * w, h), "white")
        for i, im in enumerate(panels):
            canvas.paste(im, (i * w, 0))
        canvas.save(stem + ".compare.png", format="PNG")
    first, last = result.history[0], result.history[-1]
    print(f"{'cost':10s} {'start':>10s} {'end':>10s}")
    for k in ("content", "style", "variation", "total"):
        print(f"{k:10s} {first[k]:10.4g} {last[k]:10.4g}")
    print(f"wrote {args.out} ({result.image.shape[1]}x{result.image.shape[0]}) and {stem}.costs.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
