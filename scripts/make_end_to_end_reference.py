#!/usr/bin/env python3
"""From an image file to tokens with transformers: the llava-next-tiny fixture's own processor
(PIL backend) on two committed images, then 8 greedy tokens (no EOS stop).

    python3 scripts/make_end_to_end_reference.py     # writes Fixtures/images/end_to_end.json
"""
import json
import os

import torch
from PIL import Image
from transformers import LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    folder = os.path.join(ROOT, "Fixtures", "models", "llava-next-tiny")
    model = LlavaNextForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    proc = LlavaNextImageProcessorPil.from_pretrained(folder)
    out = []
    for name in ["baseline.jpg", "rgba.png"]:
        img = Image.open(os.path.join(ROOT, "Fixtures", "images", name))
        inputs = proc(images=img, return_tensors="pt")
        feats = model.model.get_image_features(pixel_values=inputs["pixel_values"], image_sizes=inputs["image_sizes"])
        feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
        n = sum(f.shape[0] for f in feats)
        ids = torch.tensor([1, 5, 17, 9] + [179] * n + [23, 42, 11, 7, 3])
        toks = []
        with torch.no_grad():
            # Prefill with the image, then decode from the cache: a generated token that happens to be the
            # image token id is then an ordinary token, as in Fovea.
            res = model(input_ids=ids[None], pixel_values=inputs["pixel_values"], image_sizes=inputs["image_sizes"], use_cache=True)
            for _ in range(8):
                toks.append(int(res.logits[0, -1].argmax()))
                res = model(input_ids=torch.tensor([[toks[-1]]]), past_key_values=res.past_key_values, use_cache=True)
        out.append({"image": name, "image_tokens": n, "partitions": int(inputs["pixel_values"].shape[1]), "greedy": toks})
        print(out[-1])
    json.dump(out, open(os.path.join(ROOT, "Fixtures", "images", "end_to_end.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
