#!/usr/bin/env python3
"""Does DINOv2's CLS attention outline the objects of the held-out scenes? Measured with
transformers on the converted DINOv2-S/14 (.cache/models/dinov2-small) and the real-parts
model's processor, over every partition (base view + tiles) of every data/eval scene.

    python3 scripts/realparts/cls_analysis.py --processor .cache/models/fovea-dino-smol \
        --out models/fovea-dino-smol/cls_analysis.json

For each block, the CLS query's attention summed over heads (HiRED's score); per partition the
top 20% of patches by it; the fraction of those lying on an object (a patch is on an object when
over half its pixels are) against the fraction of all patches that do. The object masks go
through the same LlavaNextImageProcessor geometry (resize, pad, tiles) with nearest resampling.
"""
import argparse
import json
import os

import numpy as np
import torch
from PIL import Image
from transformers import Dinov2Model, LlavaNextImageProcessor
from transformers.image_utils import PILImageResampling

import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testmodel"))
import scenes  # noqa: E402

PATCH, GRID = 14, 16


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--processor", required=True, help="a folder with the model's processor_config.json")
    ap.add_argument("--tower", default=".cache/models/dinov2-small")
    ap.add_argument("--eval", default="data/eval")
    ap.add_argument("--keep", type=float, default=0.2)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(2)
    proc = LlavaNextImageProcessor.from_pretrained(args.processor)
    tower = Dinov2Model.from_pretrained(args.tower, attn_implementation="eager").eval()
    rows = [json.loads(l) for l in open(os.path.join(args.eval, "scenes.jsonl"))]
    k = int(round(args.keep * GRID * GRID))
    hits = {"base": np.zeros(12), "tiles": np.zeros(12)}
    counts = {"base": 0, "tiles": 0}
    on_all = {"base": 0.0, "tiles": 0.0}
    for r in rows:
        img = Image.open(os.path.join(args.eval, r["image"])).convert("RGB")
        mask = (scenes.label_map(r["objects"], r["width"], r["height"]) > 0).astype(np.uint8) * 255
        pix = proc(img, return_tensors="pt")["pixel_values"][0]
        mpix = proc(Image.fromarray(mask).convert("RGB"), return_tensors="np", resample=PILImageResampling.NEAREST,
                    do_normalize=False, do_rescale=False)["pixel_values"][0][:, 0]
        on = mpix.reshape(-1, GRID, PATCH, GRID, PATCH).mean(axis=(2, 4)).reshape(len(mpix), -1) > 127.5
        with torch.no_grad():
            att = tower(pix, output_attentions=True).attentions
        for p in range(len(pix)):
            part = "base" if p == 0 else "tiles"
            counts[part] += 1
            on_all[part] += on[p].mean()
            for layer in range(12):
                score = att[layer][p, :, 0, 1:].sum(0).numpy()
                top = np.argsort(-score, kind="stable")[:k]
                hits[part][layer] += on[p][top].mean()
    result = {"scenes": len(rows), "keep_fraction": args.keep, "partitions": counts,
              "all_patches_on_objects": {p: round(on_all[p] / counts[p], 3) for p in counts},
              "top_patches_on_objects_by_block": {p: [round(v / counts[p], 3) for v in hits[p]] for p in counts}}
    print(json.dumps(result, indent=1))
    if args.out:
        json.dump(result, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
