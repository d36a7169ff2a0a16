#!/usr/bin/env python3
"""Builds the small random-weight LLaVA checkpoints and the transformers reference
outputs that Fovea's parity tests compare against.

    python3 scripts/make_parity_fixtures.py            # writes Fixtures/models/*, Fixtures/anyres_token_counts.json

Pinned reference: transformers 5.23.0, torch (CPU) 2.x; seed 1234. The output is
deterministic for a given transformers/torch pair; Fixtures/MANIFEST.sha256 records
what was committed. Schema of reference.safetensors (all float32 unless noted):

    pixel_values   [P, 3, S, S]    what the HF image processor produced
    image_sizes    [1, 2] int64    original (height, width)        (llava_next only)
    input_ids      [L] int64       prompt with the image token expanded
    vision_hidden  [P, T, D]       vision hidden states at vision_feature_layer
    image_features [N, H]          projected (and, for llava_next, packed) image features
    logits         [L, V]          logits for every position of the merged sequence
    greedy_tokens  [8] int64       8 greedy tokens (argmax, no EOS stop), recomputed without cache
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import transformers
from transformers import (CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration,
                          LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessor)
from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures")
SEED = 1234


def synthetic_image(h, w, seed):
    """A deterministic RGB picture with structure (gradients + blocks), uint8 HWC."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], -1)
    for _ in range(4):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        img[y0:y0 + h // 4, x0:x0 + w // 4] = rng.integers(0, 256, 3)
    return img.astype(np.uint8)


def rename(key, scheme):
    """Maps a name as transformers 5 saves it onto one of the schemes found on the Hub.

    v5:      language_model.model.* / language_model.lm_head / vision_tower.embeddings.* (what save_pretrained writes)
    v4:      as v5 but vision_tower.vision_model.*  (llava-hf checkpoints made before transformers 4.52)
    v4.52:   model.language_model.* / lm_head.weight / model.vision_tower.vision_model.* / model.multi_modal_projector.*
    """
    if scheme == "v5":
        return key
    if key.startswith("vision_tower."):
        key = "vision_tower.vision_model." + key[len("vision_tower."):]
    if scheme == "v4":
        return key
    if key.startswith("language_model.model."):
        return "model.language_model." + key[len("language_model.model."):]
    if key == "language_model.lm_head.weight":
        return "lm_head.weight"
    return "model." + key


def rewrite_names(folder, scheme):
    if scheme == "v5":
        return
    index_path = os.path.join(folder, "model.safetensors.index.json")
    for f in [f for f in os.listdir(folder) if f.endswith(".safetensors")]:
        path = os.path.join(folder, f)
        save_file({rename(k, scheme): v.contiguous() for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
    if os.path.exists(index_path):
        index = json.load(open(index_path))
        index["weight_map"] = {rename(k, scheme): v for k, v in index["weight_map"].items()}
        json.dump(index, open(index_path, "w"), indent=2)


def randomize(model, seed):
    """Random weights with enough spread that attention and logits are not flat."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "embedding" in name or "image_newline" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / max(p.shape[-1], 1) ** 0.5))


def greedy(model, ids, extra, n=8):
    toks = []
    cur = ids.clone()
    for _ in range(n):
        with torch.no_grad():
            out = model(input_ids=cur[None], use_cache=False, **extra)
        t = int(out.logits[0, -1].argmax())
        toks.append(t)
        cur = torch.cat([cur, torch.tensor([t])])
    return toks


def build(name, cls, config, processor, image_hw, dtype, names, shard):
    torch.manual_seed(SEED)
    model = cls(config).eval()
    randomize(model, SEED)
    folder = os.path.join(ROOT, "models", name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    model.to(dtype)
    model.save_pretrained(folder, max_shard_size="300KB" if shard else "1GB")
    processor.save_pretrained(folder)
    rewrite_names(folder, names)
    # The reference runs on what was written, loaded back in float32.
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()

    img = synthetic_image(*image_hw, seed=SEED)
    proc = processor(images=img, return_tensors="pt")
    pixel_values = proc["pixel_values"].float()
    vcfg = config.vision_config
    layer = config.vision_feature_layer
    extra = {"pixel_values": pixel_values}
    if "image_sizes" in proc:
        extra["image_sizes"] = proc["image_sizes"]
    with torch.no_grad():
        feats = model.model.get_image_features(**extra)
        if hasattr(feats, "pooler_output"):
            feats = feats.pooler_output
        if isinstance(feats, (list, tuple)):
            # llava_next returns one packed tensor per image, llava one per batch row.
            feats = torch.cat(list(feats), 0)
        feats = feats.reshape(-1, feats.shape[-1])
        pv = pixel_values.reshape(-1, *pixel_values.shape[-3:])
        vh = model.model.vision_tower(pv, output_hidden_states=True).hidden_states[layer]
    n_img = feats.shape[0]
    tok = config.image_token_id if hasattr(config, "image_token_id") else config.image_token_index
    ids = torch.tensor([1, 5, 17, 9] + [tok] * n_img + [23, 42, 11, 7, 3], dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids[None], use_cache=False, **extra).logits[0]
    toks = greedy(model, ids, extra)
    ref = {
        "pixel_values": pv.contiguous(),
        "input_ids": ids,
        "vision_hidden": vh.contiguous(),
        "image_features": feats.contiguous(),
        "logits": logits.contiguous(),
        "greedy_tokens": torch.tensor(toks, dtype=torch.long),
    }
    if "image_sizes" in proc:
        ref["image_sizes"] = proc["image_sizes"].long()
    save_file(ref, os.path.join(folder, "reference.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__, "seed": str(SEED),
                        "image_hw": json.dumps(list(image_hw)), "image_tokens": str(n_img)})
    print(f"{name}: {n_img} image tokens, L={len(ids)}, greedy={toks}")


def token_counts():
    """Visual-token counts transformers' packing gives for many image sizes and grids."""
    sizes = [(336, 336), (1000, 1000), (100, 800), (800, 100), (500, 1000), (1000, 500), (300, 1200), (1200, 300),
             (640, 480), (480, 640), (1080, 1920), (1920, 1080), (10, 10), (1, 1), (37, 3), (3, 37), (720, 1280),
             (2000, 700), (700, 2000), (333, 999), (999, 333), (672, 672), (336, 1008), (1008, 336), (401, 257)]
    cases = []
    for image_size, patch, pinpoints in [
        (336, 14, [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]),
        (56, 14, [[56, 112], [112, 56], [112, 112], [168, 56], [56, 168]]),
    ]:
        side = image_size // patch
        for (h, w) in sizes:
            rows, cols = get_anyres_image_grid_shape((h, w), pinpoints, image_size)
            grid = torch.zeros(1, rows * side, cols * side)
            unpadded = unpad_image(grid, torch.tensor([h, w]))
            uh, uw = unpadded.shape[1:]
            cases.append({"image_size": image_size, "patch_size": patch, "pinpoints": pinpoints, "height": h, "width": w,
                          "grid": [rows, cols], "tokens": side * side + uh * uw + uh})
    with open(os.path.join(ROOT, "anyres_token_counts.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "strategy": "default", "newline": True, "cases": cases}, f, indent=1)
    grids = sorted({tuple(c["grid"]) for c in cases})
    print(f"token counts: {len(cases)} cases, grids {grids}")


def main():
    os.makedirs(os.path.join(ROOT, "models"), exist_ok=True)
    mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]

    # LLaVA-1.5 shape: Llama with grouped-query attention, float32, pre-4.52 tensor names.
    cfg = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                           num_attention_heads=4, image_size=56, patch_size=14),
        text_config=dict(model_type="llama", hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=200, max_position_embeddings=512),
        image_token_index=199, vision_feature_layer=-2, vision_feature_select_strategy="default")
    proc = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}, image_mean=mean, image_std=std)
    build("llava-tiny", LlavaForConditionalGeneration, cfg, proc, (90, 120), torch.float32, "v4", False)

    # LLaVA-NeXT: Mistral decoder, bfloat16 weights, 4.52-style tensor names, sharded, a 2x2 anyres grid.
    cfg = LlavaNextConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                           num_attention_heads=4, image_size=56, patch_size=14),
        text_config=dict(model_type="mistral", hidden_size=96, intermediate_size=192, num_hidden_layers=2,
                         num_attention_heads=6, num_key_value_heads=2, head_dim=16, vocab_size=180,
                         max_position_embeddings=1024, sliding_window=4096, rope_theta=1e6),
        image_token_index=179, vision_feature_layer=2, vision_feature_select_strategy="default",
        image_grid_pinpoints=[[56, 112], [112, 56], [112, 112], [168, 56], [56, 168]])
    proc = LlavaNextImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56},
                                   image_grid_pinpoints=[[56, 112], [112, 56], [112, 112], [168, 56], [56, 168]],
                                   image_mean=mean, image_std=std)
    build("llava-next-tiny", LlavaNextForConditionalGeneration, cfg, proc, (100, 110), torch.bfloat16, "v4.52", True)

    # LLaVA with the `full` strategy (CLS kept), a positive feature layer, tied embeddings, float16, names as v5 saves them.
    cfg = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=28, patch_size=14, hidden_act="gelu"),
        text_config=dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, vocab_size=120, tie_word_embeddings=True, rope_theta=500.0),
        image_token_index=119, vision_feature_layer=1, vision_feature_select_strategy="full",
        projector_hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True)
    proc = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, image_mean=mean, image_std=std)
    build("llava-full-tied", LlavaForConditionalGeneration, cfg, proc, (40, 30), torch.float16, "v5", False)

    token_counts()
    manifest()


def manifest():
    import hashlib
    lines = []
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if f == "MANIFEST.sha256":
                continue
            path = os.path.join(dirpath, f)
            rel = "./" + os.path.relpath(path, ROOT)
            lines.append(f"{hashlib.sha256(open(path, 'rb').read()).hexdigest()}  {rel}")
    with open(os.path.join(ROOT, "MANIFEST.sha256"), "w") as out:
        out.write("\n".join(sorted(lines, key=lambda l: l.split("  ")[1])) + "\n")


if __name__ == "__main__":
    sys.exit(main())
