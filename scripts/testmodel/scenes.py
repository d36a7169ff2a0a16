#!/usr/bin/env python3
"""Synthetic high-resolution scenes with known content, and questions about them with short
exact answers: the data Fovea's trained test model learns from and is evaluated on.

A scene (336–672 px a side, eight aspect ratios so LLaVA-NeXT's anyres picks different grids)
holds 3–5 objects (2 where no third fits) — circles, squares, triangles, diamonds in six colours — on a smooth, muted,
textured background, so most of the picture carries nothing. Sizes are set in the test model's
tile space: the tower sees 112-px tiles of 14-px patches cut from an anyres canvas of at most
224×224 (or 112×336), so a scene is shown at 1/4–1/2 of its size. An object measures 42–56 px
there (3–4 patches a side) but only about half that in the squashed 112-px base image. About
half the objects carry one printed character whose capitals stand about 17 px in the tiles
(a little over one patch) and about 8 px in the base image — only the tiles resolve it.

Question kinds (answers are one word):
    colour    What colour is the triangle?                     -> red
    where     What shape is in the top left?                    -> circle
    count     How many blue objects are there?                  -> 2
    exist     Is there a green square?                          -> yes / no   (half about absent objects, as POPE)
    ocr       What character is written on the yellow circle?   -> 7

Everything is a pure function of the seed (numpy + Pillow 13's bundled font).

    python3 scripts/testmodel/scenes.py --eval data/eval      # the committed held-out set (seed 2026)
"""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHAPES = ["circle", "square", "triangle", "diamond"]
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 205, 30),
           "purple": (150, 60, 190), "orange": (245, 140, 30)}
CHARS = list("ABCDEFHKLMNPRTXY2345789")
REGIONS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
SIZES = [(448, 448), (448, 672), (672, 448), (448, 560), (560, 448), (672, 672), (336, 672), (672, 336)]  # (w, h)
# The test model's anyres grid (height, width) — LLaVA-NeXT's five at a third of the scale.
PINPOINTS = [[112, 224], [224, 112], [224, 224], [336, 112], [112, 336]]
KINDS = ["colour", "where", "count", "exist", "ocr"]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six"]


def background(rng, h, w):
    """Smooth low-frequency colour field plus a faint stripe texture, quantised so PNG compresses it."""
    base = np.array(rng.integers(90, 190, 3), dtype=np.float32)
    coarse = rng.normal(0, 18, (h // 64 + 2, w // 64 + 2, 3)).astype(np.float32)
    field = np.array(Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC),
                     dtype=np.float32) - 128
    y, x = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, np.pi)
    stripes = 6 * np.sin((x * np.cos(angle) + y * np.sin(angle)) / rng.uniform(6, 14))[..., None]
    img = base + field + stripes
    return (np.clip(img, 0, 255) // 12 * 12).astype(np.uint8)


def draw_shape(draw, shape, box, colour):
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, (y0 + y1) / 2), ((x0 + x1) / 2, y1), (x0, (y0 + y1) / 2)], fill=colour)


def canvas_scale(w, h):
    """The scale at which LLaVA-NeXT shows a w×h image on its best canvas (transformers'
    select_best_resolution: most effective pixels, then least waste)."""
    best, most, least_waste = 1.0, 0, float("inf")
    for ph, pw in PINPOINTS:
        s = min(pw / w, ph / h)
        effective = min(int(w * s) * int(h * s), w * h)
        waste = pw * ph - effective
        if effective > most or (effective == most and waste < least_waste):
            best, most, least_waste = s, effective, waste
    return best


def region_of(cx, cy, w, h):
    col = min(int(cx / w * 3), 2)
    row = min(int(cy / h * 3), 2)
    return REGIONS[row * 3 + col]


def label_map(objects, w, h):
    """Per-pixel object index (0 = background, i + 1 = objects[i]), drawn with the same primitives."""
    lab = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(lab)
    for i, o in enumerate(objects):
        draw_shape(d, o["shape"], o["box"], i + 1)
    return np.array(lab)


def make_scene(rng):
    """Returns (PIL image, list of objects)."""
    w, h = SIZES[rng.integers(len(SIZES))]
    scale = canvas_scale(w, h)
    img = Image.fromarray(background(rng, h, w))
    draw = ImageDraw.Draw(img)
    objects = []
    n = int(rng.integers(3, 6))
    for _ in range(3000):
        if len(objects) == n:
            break
        size = int(rng.uniform(42, 56) / scale)
        x0, y0 = int(rng.integers(8, w - size - 8)), int(rng.integers(8, h - size - 8))
        box = (x0, y0, x0 + size, y0 + size)
        if any(not (box[2] + 12 < o["box"][0] or o["box"][2] + 12 < box[0] or box[3] + 12 < o["box"][1] or o["box"][3] + 12 < box[1])
               for o in objects):
            continue
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        objects.append({"shape": shape, "colour": colour, "box": box,
                        "region": region_of(x0 + size / 2, y0 + size / 2, w, h), "char": None})
    for o in objects:
        draw_shape(draw, o["shape"], o["box"], COLOURS[o["colour"]])
    # Characters: printed on about half the objects, at a size only the tiles resolve.
    font_px = round(24 / scale)
    font = ImageFont.load_default(size=font_px)
    for o in objects:
        if rng.random() < 0.5:
            o["char"] = CHARS[rng.integers(len(CHARS))]
            x0, y0, x1, y1 = o["box"]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + (0.12 * (y1 - y0) if o["shape"] == "triangle" else 0)
            ink = (255, 255, 255) if o["colour"] in ("blue", "purple", "red", "green") else (20, 20, 20)
            draw.text((cx, cy), o["char"], fill=ink, font=font, anchor="mm")
            o["char_box"] = [int(v) for v in draw.textbbox((cx, cy), o["char"], font=font, anchor="mm")]
    return img, objects


def questions(rng, objects, kinds=KINDS):
    """All well-posed questions of the given kinds about one scene, as (kind, question, answer).
    Sets are iterated sorted: Python's string hashing is randomised per process."""
    out = []
    shapes = [o["shape"] for o in objects]
    for s in sorted(set(shapes)):
        if shapes.count(s) == 1:
            o = objects[shapes.index(s)]
            out.append(("colour", f"What colour is the {s}?", o["colour"]))
    regions = [o["region"] for o in objects]
    for r in sorted(set(regions)):
        if regions.count(r) == 1:
            out.append(("where", f"What shape is in the {r}?", objects[regions.index(r)]["shape"]))
    for c in COLOURS:
        k = sum(o["colour"] == c for o in objects)
        if k or rng.random() < 0.15:
            out.append(("count", f"How many {c} objects are there?", str(k)))
    present = {(o["colour"], o["shape"]) for o in objects}
    absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
    for c, s in sorted(present):
        out.append(("exist", f"Is there a {c} {s}?", "yes"))
        c2, s2 = absent[rng.integers(len(absent))]
        out.append(("exist", f"Is there a {c2} {s2}?", "no"))
    pairs = [(o["colour"], o["shape"]) for o in objects]
    for o in objects:
        if o["char"] and pairs.count((o["colour"], o["shape"])) == 1:
            out.append(("ocr", f"What character is written on the {o['colour']} {o['shape']}?", o["char"]))
    return [q for q in out if q[0] in kinds]


def training_stream(seed):
    """Endless (image, [(kind, question, answer), ...]) pairs for training. Training seeds must
    differ from the evaluation seed (2026); numpy's generator streams for different seeds are
    independent, so no evaluation scene recurs."""
    assert seed != 2026, "seed 2026 is the held-out evaluation set"
    rng = np.random.default_rng(seed)
    while True:
        img, objects = make_scene(rng)
        qs = questions(rng, objects)
        if qs:
            yield img, objects, qs


def eval_set(folder, seed=2026, per_kind=100):
    """≥ 500 questions, 100 of each kind, over scenes drawn only from this seed's stream."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "scenes"), exist_ok=True)
    counts = {k: 0 for k in KINDS}
    rows = []
    scene_rows = []
    index = 0
    while min(counts.values()) < per_kind:
        img, objects = make_scene(rng)
        qs = questions(rng, objects)
        rng.shuffle(qs)
        taken = []
        seen_kinds = set()
        for kind, q, a in qs:
            # At most one question of a kind per scene keeps the set varied; skip kinds already full.
            if counts[kind] >= per_kind or kind in seen_kinds:
                continue
            taken.append((kind, q, a))
            seen_kinds.add(kind)
            counts[kind] += 1
        if not taken:
            continue
        name = f"scene_{index:04d}.png"
        img.save(os.path.join(folder, "scenes", name), optimize=True)
        scene_rows.append({"image": f"scenes/{name}", "width": img.width, "height": img.height, "objects": objects})
        for kind, q, a in taken:
            rows.append({"image": f"scenes/{name}", "question": q, "answer": a, "kind": kind,
                         "width": img.width, "height": img.height})
        index += 1
    with open(os.path.join(folder, "questions.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    # What each scene holds (boxes in pixels), for analyses such as where CLS attention falls.
    with open(os.path.join(folder, "scenes.jsonl"), "w") as f:
        for r in scene_rows:
            f.write(json.dumps(r) + "\n")
    print(f"{len(rows)} questions on {index} scenes: {counts}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", help="write the held-out evaluation set into this folder")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--preview", help="write one scene PNG here and print its objects")
    args = ap.parse_args()
    if args.eval:
        eval_set(args.eval, args.seed)
    if args.preview:
        img, objs = make_scene(np.random.default_rng(args.seed))
        img.save(args.preview)
        print(json.dumps(objs))
