#!/usr/bin/env python3
"""Pixel tensors transformers' image processors make from real photographs (scikit-image's
sample data, fetched by scripts/fetch_models.sh into .cache/images; not committed).

    python3 scripts/make_processor_reference.py

For LLaVA-1.5's CLIPImageProcessor (shortest edge 336, crop 336) and LLaVA-NeXT's
LlavaNextImageProcessor (336, the five standard pinpoints), both with transformers' PIL backend,
records per photo: the tensor shape, image_sizes, per-partition per-channel mean and std, and
1000 seeded (flat index, value) samples. Writes Fixtures/images/processor_reference.json.
"""
import json
import os

import numpy as np
from PIL import Image
import transformers
from transformers import CLIPImageProcessorPil, LlavaNextImageProcessorPil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
          "motorcycle_left.png", "page.png", "camera.png", "logo.png"]
CONFIGS = {
    "clip": {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 336},
             "crop_size": {"height": 336, "width": 336}, "resample": 3},
    "llava_next": {"image_processor_type": "LlavaNextImageProcessor", "size": {"shortest_edge": 336},
                   "crop_size": {"height": 336, "width": 336}, "resample": 3,
                   "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]},
}


def main():
    out = {"transformers": transformers.__version__, "configs": CONFIGS, "cases": []}
    processors = {
        "clip": CLIPImageProcessorPil(**{k: v for k, v in CONFIGS["clip"].items() if k != "image_processor_type"}),
        "llava_next": LlavaNextImageProcessorPil(**{k: v for k, v in CONFIGS["llava_next"].items() if k != "image_processor_type"}),
    }
    for photo in PHOTOS:
        img = Image.open(os.path.join(ROOT, ".cache", "images", photo))
        for name, proc in processors.items():
            res = proc(images=img, return_tensors="np")
            pv = np.asarray(res["pixel_values"][0], dtype=np.float32)
            if pv.ndim == 3:
                pv = pv[None]
            rng = np.random.default_rng(len(out["cases"]) + 1)
            idx = np.sort(rng.choice(pv.size, size=1000, replace=False))
            out["cases"].append({
                "photo": photo, "processor": name, "shape": list(pv.shape),
                "image_size": [img.height, img.width],
                "mean": pv.mean(axis=(2, 3), dtype=np.float64).tolist(),
                "std": pv.std(axis=(2, 3), dtype=np.float64).tolist(),
                "indices": idx.tolist(), "values": pv.reshape(-1)[idx].astype(float).tolist(),
            })
            print(photo, name, pv.shape)
    with open(os.path.join(ROOT, "Fixtures", "images", "processor_reference.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
