#!/usr/bin/env python3
"""What the trained model's vision CLS attention does, measured with transformers.

    python3 scripts/testmodel/analyze.py --model models/fovea-test-llava [--limit N]

1. Where CLS looks: in every partition (base + tiles) of every held-out scene, the top 20% of
   patches by CLS attention at the feature layer's attention (summed over heads, as HiRED scores
   them) — what fraction lie on an object, against the fraction of all patches that do.
2. What that is worth: held-out accuracy when the LLM sees only the top-20% patch tokens (by that
   score, per partition) versus a random 20%, image_newline tokens kept, with kept tokens at
   their original position ids and with positions renumbered 0…n.
Prints a JSON summary and writes it to <model>/cls_analysis.json.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402
from train import PATCH, TILE, canvas_geometry, partitions  # noqa: E402


def partition_labels(objects, w, h):
    """Per-patch 'covers an object' masks (over half the patch) for the base view and each tile,
    cut with the processor's geometry, and the tile grid (rows, cols)."""
    lab = Image.fromarray((scenes.label_map(objects, w, h) > 0).astype(np.uint8))
    g = TILE // PATCH
    masks = [v.reshape(g, PATCH, g, PATCH).mean(axis=(1, 3)).reshape(-1) > 0.5 for v in partitions(lab, Image.NEAREST)]
    (ch, cw), _, _ = canvas_geometry(h, w)
    return masks, (ch // TILE, cw // TILE)


def packed_index(grid, h, w, side):
    """For each packed visual token: (partition, patch) or None for image_newline — transformers' order."""
    rows, cols = grid
    order = [(0, i) for i in range(side * side)]
    gh, gw = rows * side, cols * side
    if w / h > gw / gh:
        nh = int(round(h * (gw / w), 7)); pad = (gh - nh) // 2; r0, r1, c0, c1 = pad, gh - pad, 0, gw
    else:
        nw = int(round(w * (gh / h), 7)); pad = (gw - nw) // 2; r0, r1, c0, c1 = 0, gh, pad, gw - pad
    for gy in range(r0, r1):
        for gx in range(c0, c1):
            order.append((1 + (gy // side) * cols + gx // side, (gy % side) * side + gx % side))
        order.append(None)
    return order


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fovea-test-llava")
    ap.add_argument("--eval", default="data/eval")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--keep", type=float, default=0.2)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = LlavaNextForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").eval()
    proc = LlavaNextProcessor.from_pretrained(args.model)
    tok = proc.tokenizer
    vt = model.model.vision_tower
    layer = model.config.vision_config.num_hidden_layers + model.config.vision_feature_layer if model.config.vision_feature_layer < 0 \
        else model.config.vision_feature_layer - 1
    side = TILE // PATCH
    scene_info = {json.loads(l)["image"]: json.loads(l) for l in open(os.path.join(args.eval, "scenes.jsonl"))}
    rows = [json.loads(l) for l in open(os.path.join(args.eval, "questions.jsonl"))][:args.limit]
    on_top, on_all, n_top, n_all = 0, 0, 0, 0
    conds = ["full", "top_original", "top_renumbered", "random_original", "random_renumbered"]
    correct = {c: {} for c in conds}
    total = {}
    cache = {}
    image_id = model.config.image_token_id if hasattr(model.config, "image_token_id") else model.config.image_token_index
    with torch.no_grad():
        for r in rows:
            info = scene_info[r["image"]]
            img = Image.open(os.path.join(args.eval, r["image"]))
            text = tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}], tokenize=False,
                                           add_generation_prompt=True)
            enc = proc(images=img, text=text, return_tensors="pt")
            if r["image"] not in cache:
                pv = enc["pixel_values"][0]
                att = vt(pixel_values=pv, output_attentions=True).attentions[layer]     # [P, heads, T, T]
                score = att[:, :, 0, 1:].sum(1).numpy()                                 # CLS row, patch columns
                masks, grid = partition_labels(info["objects"], info["width"], info["height"])
                feats = model.model.get_image_features(pixel_values=enc["pixel_values"], image_sizes=enc["image_sizes"])
                feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
                feats = torch.cat(list(feats), 0)
                order = packed_index(grid, info["height"], info["width"], side)
                assert len(order) == feats.shape[0], (len(order), feats.shape)
                k = max(1, int(round(args.keep * side * side)))
                top = {p: set(np.argsort(-score[p], kind="stable")[:k].tolist()) for p in range(score.shape[0])}
                rand = {p: set(rng.choice(side * side, k, replace=False).tolist()) for p in range(score.shape[0])}
                for p in range(score.shape[0]):
                    m = masks[p]
                    on_top += sum(m[i] for i in top[p]); n_top += k
                    on_all += int(m.sum()); n_all += m.size
                cache[r["image"]] = (feats, order, top, rand)
            feats, order, top, rand = cache[r["image"]]
            ids = enc["input_ids"][0]
            start = int((ids == image_id).nonzero()[0])
            n_img = feats.shape[0]
            emb = model.get_input_embeddings()(ids)
            emb[start:start + n_img] = feats
            total[r["kind"]] = total.get(r["kind"], 0) + 1
            for cond in conds:
                if cond == "full":
                    keep = list(range(n_img))
                else:
                    chosen = top if cond.startswith("top") else rand
                    keep = [i for i, o in enumerate(order) if o is None or o[1] in chosen[o[0]]]
                idx = list(range(start)) + [start + i for i in keep] + list(range(start + n_img, len(ids)))
                x = emb[idx][None]
                pos = torch.tensor(idx)[None] if cond.endswith("original") or cond == "full" else torch.arange(len(idx))[None]
                answer = []
                for _ in range(4):
                    logits = model.model.language_model(inputs_embeds=x, position_ids=pos).last_hidden_state[:, -1]
                    t = int(model.lm_head(logits).argmax())
                    if t == tok.eos_token_id:
                        break
                    answer.append(t)
                    x = torch.cat([x, model.get_input_embeddings()(torch.tensor([[t]]))], 1)
                    pos = torch.cat([pos, pos[:, -1:] + 1], 1)
                ok = tok.decode(answer, skip_special_tokens=True).strip() == r["answer"]
                correct[cond][r["kind"]] = correct[cond].get(r["kind"], 0) + ok
    summary = {
        "questions": len(rows), "scenes": len(cache), "keep_fraction": args.keep, "cls_layer": layer,
        "top_patches_on_objects": on_top / n_top, "all_patches_on_objects": on_all / n_all,
        "accuracy": {c: {**{k: correct[c].get(k, 0) / total[k] for k in total}, "all": sum(correct[c].values()) / len(rows)}
                     for c in conds},
    }
    print(json.dumps(summary, indent=1))
    json.dump(summary, open(os.path.join(args.model, "cls_analysis.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
