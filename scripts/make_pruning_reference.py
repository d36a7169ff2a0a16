#!/usr/bin/env python3
"""An independent reference for Fovea's pruners, computed with transformers on the shipped test model.

    python3 scripts/make_pruning_reference.py            # needs: bash scripts/setup.sh --python

For a few held-out scenes chosen to cover every tile grid of the test model (1x2, 2x1, 2x2, 1x3, 3x1:
three bands over its 8-patch grid do not divide it), this runs LlavaNextForConditionalGeneration
(transformers 5.23.0, eager attention, output_attentions=True) and writes Fixtures/pruning/:

- reference.safetensors: cls_<i>_<layer> [partitions, heads, 1 + patches], the vision tower's CLS-query
  attention rows at every encoder layer LLaVA runs;
- reference.json: per scene, its grid and the index sets methods.md prescribes, computed here from
  those rows and the language model's own tensors with numpy, not with Fovea's code:
  HiRED (paper and code rules, several r and alpha; and Fovea's score=received extension), the VisionZip dominant set, DART's embedding form, FastV (k=1: the test
  model has 2 layers) and DART in the LLM (k=1), as kept patch indices per partition or kept image rows.

Ranking everywhere: larger first, ties to the lower index (a stable argsort of the negated score).
"""
import json
import math
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

MODEL = "models/fovea-test-llava"
EVAL = "data/eval"
OUT = "Fixtures/pruning"


def topk(scores, k):
    """Indices of the k largest, ties to the lower index, best first."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:max(0, min(k, len(order)))]]


def band(b, B, G):
    return range(b * G // B, (b + 1) * G // B)


def hired(S0, F, grid, G, r, alpha, rule, marks=100):
    """methods.md section 1: budgets and kept patches per partition. S0: base early scores; F: late, per partition."""
    P, n = len(F), G * G
    N = int(P * n * r)
    if P == 1:
        return [N], [sorted(topk(F[0], N))]
    R, C = grid
    N0 = min(int(alpha * N), n)
    Nt = min(N - N0, R * C * n)
    marked = set(topk(S0, min(marks, n))) if rule == "code" else set()
    shares = []
    for tr in range(R):
        for tc in range(C):
            s = 0.0
            for y in band(tr, R, G):
                for x in band(tc, C, G):
                    j = y * G + x
                    s += float(S0[j]) if rule == "paper" else (1.0 if j in marked else 0.0)
            shares.append(s)
    total = sum(shares)
    budgets = [N0] + [min(int(math.floor(Nt * s / total)) if total > 0 else Nt // (R * C), n) for s in shares]
    return budgets, [sorted(topk(F[p], budgets[p])) for p in range(P)]


def dart_choose(vectors, pivot_norm, text_vectors, budget, p_img, p_count):
    """methods.md section 5, DART: pivots, then per pivot the least cosine-similar unchosen candidates."""
    pivots = sorted(topk(pivot_norm, p_img))
    chosen = set(pivots)
    per = budget // p_count
    norms = np.linalg.norm(vectors, axis=1)
    rows = [vectors[p] for p in pivots] + list(text_vectors)
    for pv in rows:
        valid = [j for j in range(len(vectors)) if j not in chosen]
        if not valid:
            break
        cos = (vectors[valid] @ pv) / np.maximum(np.linalg.norm(pv) * norms[valid], 1e-8)
        for t in topk(-cos, per):
            chosen.add(valid[t])
    return sorted(chosen)


def main():
    model = LlavaNextForConditionalGeneration.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").eval()
    proc = LlavaNextProcessor.from_pretrained(MODEL)
    tok = proc.tokenizer
    cfg = model.config
    G = cfg.vision_config.image_size // cfg.vision_config.patch_size
    n = G * G
    layers_run = cfg.vision_config.num_hidden_layers + cfg.vision_feature_layer + 1   # hidden_states[-2] -> 3 layers
    feature_layer = layers_run - 1
    rows = [json.loads(l) for l in open(os.path.join(EVAL, "questions.jsonl"))]
    # One scene per grid, in the order the set lists them.
    picked, grids = [], set()
    for r in rows:
        w, h = r["width"], r["height"]
        best = max(cfg.image_grid_pinpoints, key=lambda p: (min(min(p[1] / w, p[0] / h) * w * min(p[1] / w, p[0] / h) * h, w * h), -p[0] * p[1]))
        g = (best[0] // cfg.vision_config.image_size, best[1] // cfg.vision_config.image_size)
        if g not in grids:
            grids.add(g)
            picked.append(r)
    # The eval set has no 1:3 scenes; two made from one (resized, saved beside the fixture) give the 1x3
    # and 3x1 grids, where three bands over the 8-patch grid do not divide it.
    os.makedirs(OUT, exist_ok=True)
    src = Image.open(os.path.join(EVAL, picked[0]["image"])).convert("RGB")
    for name, size in (("tall.png", (200, 600)), ("wide.png", (600, 200))):
        src.resize(size, Image.BICUBIC).save(os.path.join(OUT, name))
        picked.append({"image": os.path.relpath(os.path.join(OUT, name), EVAL), "question": picked[0]["question"]})
    tensors, scenes = {}, []
    with torch.no_grad():
        for i, r in enumerate(picked):
            text = tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}], tokenize=False,
                                           add_generation_prompt=True)
            enc = proc(images=Image.open(os.path.join(EVAL, r["image"])), text=text, return_tensors="pt")
            pv = enc["pixel_values"][0]                      # [P, 3, S, S]
            vout = model.model.vision_tower(pv, output_attentions=True, output_hidden_states=True)
            cls = {l: vout.attentions[l][:, :, 0, :].contiguous() for l in range(layers_run)}
            for l, t in cls.items():
                tensors[f"cls_{i}_{l}"] = t
            P = pv.shape[0]
            from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape
            R, C = get_anyres_image_grid_shape(enc["image_sizes"][0].tolist(), cfg.image_grid_pinpoints, cfg.vision_config.image_size)
            score = {l: cls[l][:, :, 1:].double().sum(dim=1).numpy() for l in cls}   # [P, n], summed over heads
            entry = {"image": os.path.normpath(os.path.join(EVAL, r["image"])), "question": r["question"], "grid": [int(R), int(C)], "partitions": P, "hired": [], "visionzip": []}
            for rule in ("paper", "code"):
                for rate in (0.1, 0.2, 0.4, 1.0):
                    for alpha in (0.0, 0.5, 1.0):
                        budgets, kept = hired(score[0][0], score[feature_layer], (R, C), G, rate, alpha, rule)
                        entry["hired"].append({"spec": f"hired:r={rate},alpha={alpha},rule={rule}", "budgets": budgets, "kept": kept})
            # Fovea's extension for towers without CLS (not the paper's): mean attention received from patch queries.
            received = {l: (vout.attentions[l][:, :, 1:, 1:].double().sum(dim=2).sum(dim=1) / n).numpy() for l in cls}
            for rate in (0.2, 0.4):
                budgets, kept = hired(received[0][0], received[feature_layer], (R, C), G, rate, 0.5, "paper")
                entry["hired"].append({"spec": f"hired:r={rate},score=received", "budgets": budgets, "kept": kept})
            for rate in (64 / 576, 0.2, 0.4):
                T = int(n * rate)
                ctx = min(T, round(T * 10 / 64))
                dominant = T - ctx
                kept = [sorted(topk(score[feature_layer][p], max(0, dominant - 1))) for p in range(P)]
                entry["visionzip"].append({"spec": f"visionzip:r={rate}", "dominant": kept})

            # DART's embedding form: over the whole image's projected patches, image pivots only.
            proj = model.model.multi_modal_projector(vout.hidden_states[cfg.vision_feature_layer][:, 1:]).double().numpy()
            flat = proj.reshape(P * n, -1)
            entry["dart_embed"] = []
            for rate in (0.2, 0.4):
                kept = dart_choose(flat, np.abs(flat).sum(axis=1), [], int(P * n * rate), 4, 4)
                entry["dart_embed"].append({"spec": f"dart:where=embed,r={rate}", "kept": [[k % n for k in kept if k // n == p] for p in range(P)]})

            # The language model: FastV and DART at k = 1 read layer 0.
            out = model(**enc, output_attentions=True, output_hidden_states=True, use_cache=True)
            ids = enc["input_ids"][0]
            image_rows = [int(j) for j in torch.nonzero(ids == cfg.image_token_id).flatten()]
            after = [j for j in range(len(ids)) if j > image_rows[-1]]
            att = out.attentions[0][0].double()                     # [heads, L, L]
            last = att[:, -1, :].mean(dim=0).numpy()
            L = att.shape[-1]
            colmean = np.array([att[:, j:, j].sum().item() / (att.shape[0] * (L - j)) for j in range(L)])
            m = len(image_rows)
            entry["fastv"] = []
            for rule, sc in (("last", last), ("all", colmean)):
                for ratio in (0.5, 0.75, 0.0):
                    keep = m - int(m * ratio)
                    best = topk([sc[j] for j in image_rows], keep)
                    entry["fastv"].append({"spec": f"fastv:k=1,ratio={ratio},rule={rule}", "kept": sorted(best)})
            hidden = model.model.language_model.norm(out.hidden_states[1][0]).double().numpy()   # layer 0's output, normed
            keys = out.past_key_values.layers[0].keys[0]                 # [kvH, L, hd], after RoPE
            keys = keys.permute(1, 0, 2).reshape(L, -1).double().numpy()
            key_l1 = np.abs(keys).sum(axis=1)
            entry["dart"] = []
            for rate in (0.2, 0.4):
                B = int(m * rate)
                text_pivots = sorted(topk([key_l1[j] for j in after], 4))
                kept = dart_choose(hidden[image_rows], [key_l1[j] for j in image_rows],
                                   [hidden[after[t]] for t in text_pivots], B, 4, 8)
                entry["dart"].append({"spec": f"dart:k=1,r={rate}", "kept": kept})
            scenes.append(entry)
            print(f"{r['image']}: grid {R}x{C}, {P} partitions, {m} image rows")
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "reference.safetensors"))
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"model": MODEL, "transformers": __import__("transformers").__version__, "layers_run": layers_run,
                   "feature_layer": feature_layer, "scenes": scenes}, f, indent=1)


if __name__ == "__main__":
    main()
