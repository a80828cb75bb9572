"""Annotated copies of analyzed photos: each face's box, landmarks and top attributes drawn with Pillow."""
from __future__ import annotations

import numpy as np

COLORS = ((255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (255, 120, 255))


def face_label(attributes: dict, limit: int = 4) -> list[str]:
    """Short lines for a face: age, gender, race, expression, then the most confident present attributes."""
    lines = []
    for key in ("age", "gender", "race", "expression"):
        a = attributes.get(key)
        if a:
            value = f"{a['value']:.0f}" if "value" in a else a.get("label", "?")
            lines.append(f"{key} {value}" + ("?" if a.get("abstain") else ""))
    present = sorted(((a["probability"], n) for n, a in attributes.items() if a.get("present")), reverse=True)
    lines += [n.replace("_", " ") for _p, n in present[:limit]]
    return lines


def annotate(image: np.ndarray, result: dict):
    """A PIL image: ``image`` (uint8 RGB, the one ``analyze`` saw) with ``result``'s faces drawn on it."""
    from PIL import Image, ImageDraw
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 300))
    for i, face in enumerate(result.get("faces", [])):
        color = COLORS[i % len(COLORS)]
        r = face["faceRectangle"]
        draw.rectangle([r["left"], r["top"], r["left"] + r["width"], r["top"] + r["height"]], outline=color,
                       width=width)
        for x, y in face["landmarks"].values():
            draw.ellipse([x - 1.5 * width, y - 1.5 * width, x + 1.5 * width, y + 1.5 * width], fill=color)
        text = "\n".join([f"face {i + 1} ({face['score']:.2f})"] + face_label(face["attributes"]))
        x, y = r["left"], r["top"] + r["height"] + 2
        box = draw.multiline_textbbox((x, y), text)
        if box[3] > canvas.size[1]:  # no room below the face: write above it
            y = max(0, r["top"] - (box[3] - box[1]) - 2)
            box = draw.multiline_textbbox((x, y), text)
        draw.rectangle(box, fill=(0, 0, 0))
        draw.multiline_text((x, y), text, fill=color)
    return canvas
