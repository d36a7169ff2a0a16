#!/usr/bin/env python3
"""transformers' Dinov2Model on the converted DINOv2-S/14 (.cache/models/dinov2-small, made by
scripts/fetch_models.sh), for Fovea's tower parity test.

    python3 scripts/realparts/make_dinov2_reference.py

Writes Fixtures/dinov2/reference.safetensors:
  rgb            [2, 224, 224, 3] uint8 — two real photographs (scikit-image's astronaut and
                 coffee), bicubic-resized to 224×224; normalised on both sides as
                 (v / 255 − ImageNet mean) / std in float32
  hidden_11      [2, 257, 384] — hidden state after block 11 (LLaVA's `vision_feature_layer` −2)
  hidden_12      [2, 257, 384] — after block 12 (before the final layernorm)
  cls_attention  [12, 2, 6, 257] — every block's CLS query row (eager attention), HiRED's input
"""
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import Dinov2Model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def main():
    model = Dinov2Model.from_pretrained(os.path.join(ROOT, ".cache/models/dinov2-small"), dtype=torch.float32,
                                        attn_implementation="eager").eval()
    rgb = np.stack([np.array(Image.open(os.path.join(ROOT, ".cache/images", n)).convert("RGB").resize((224, 224), Image.BICUBIC))
                    for n in ("astronaut.png", "coffee.png")])
    pixels = ((rgb.astype(np.float32) / np.float32(255) - MEAN) / STD).transpose(0, 3, 1, 2)
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(pixels)), output_hidden_states=True, output_attentions=True)
    save_file({
        "rgb": torch.from_numpy(rgb.copy()),
        "hidden_11": out.hidden_states[11].contiguous(),
        "hidden_12": out.hidden_states[12].contiguous(),
        "cls_attention": torch.stack([a[:, :, 0, :] for a in out.attentions]).contiguous(),
    }, os.path.join(ROOT, "Fixtures/dinov2/reference.safetensors"))
    print("wrote Fixtures/dinov2/reference.safetensors")


if __name__ == "__main__":
    main()
