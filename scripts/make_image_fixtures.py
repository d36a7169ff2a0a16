#!/usr/bin/env python3
"""Small image files of every kind Fovea decodes, and what PIL + transformers make of them.

    python3 scripts/make_image_fixtures.py      # needs pillow, numpy, transformers

Every picture is drawn here (no third-party images): grey, 1-bit grey, RGB, RGBA with varied
alpha, grey+alpha, palette with a transparent entry, 16-bit RGB PNGs; baseline, progressive and
greyscale JPEGs. The reference for each is `convert_to_rgb(PIL.Image.open(f))` as transformers'
image processors apply it (RGBA composited over white), as uint8 [H, W, 3] in reference.safetensors.
"""
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers.image_transforms import convert_to_rgb

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "images")


def picture(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x * y) % 256], -1).astype(np.uint8)
    img[h // 3: h // 2, w // 4: w // 2] = rng.integers(0, 256, 3)
    return img


def write_png16(path, samples):
    import struct
    import zlib
    h, w, _ = samples.shape
    raw = b"".join(b"\x00" + samples[y].tobytes() for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    rgb = picture(23, 37, 1)
    alpha = (np.mgrid[0:23, 0:37][1] * 255 // 36).astype(np.uint8)
    files = {
        "rgb.png": Image.fromarray(rgb),
        "grey.png": Image.fromarray(rgb[..., 0]),
        "grey1bit.png": Image.fromarray(rgb[..., 0] > 127),
        "rgba.png": Image.fromarray(np.dstack([rgb, alpha])),
        "greyalpha.png": Image.fromarray(np.dstack([rgb[..., 1], alpha]), mode="LA"),
        "interlaced.png": Image.fromarray(rgb),
    }
    pal = Image.fromarray(rgb).quantize(colors=16)
    pal.info["transparency"] = 3
    files["palette.png"] = pal
    for name, im in files.items():
        kwargs = {"interlace": 1} if name == "interlaced.png" else {}
        if name == "palette.png":
            im.save(os.path.join(OUT, name), transparency=3)
        else:
            im.save(os.path.join(OUT, name), **kwargs)
    # 16-bit RGB: PIL cannot write it, so the PNG is assembled here (IHDR depth 16, colour type 2).
    rgb16 = (rgb.astype(np.uint16) * 257 - np.arange(37, dtype=np.uint16)[None, :, None]).astype(">u2")
    write_png16(os.path.join(OUT, "rgb16.png"), rgb16)
    big = picture(64, 96, 2)
    Image.fromarray(big).save(os.path.join(OUT, "baseline.jpg"), quality=90)
    Image.fromarray(big).save(os.path.join(OUT, "progressive.jpg"), quality=85, progressive=True)
    Image.fromarray(big[..., 1]).save(os.path.join(OUT, "grey.jpg"), quality=90)
    Image.fromarray(big).save(os.path.join(OUT, "subsampled420.jpg"), quality=75, subsampling=2)
    ref = {}
    for name in sorted(os.listdir(OUT)):
        if name.endswith((".png", ".jpg")):
            ref[name] = torch.from_numpy(np.array(convert_to_rgb(Image.open(os.path.join(OUT, name)))).astype(np.uint8).copy())
            print(name, Image.open(os.path.join(OUT, name)).mode, tuple(ref[name].shape))
    save_file(ref, os.path.join(OUT, "reference.safetensors"))


if __name__ == "__main__":
    main()
