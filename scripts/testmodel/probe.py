#!/usr/bin/env python3
"""Short side-by-side runs of train.py's base-view stage, to compare training choices before
spending an hour on a full run (how the 2-layer language model and the tile share were chosen).

    python3 scripts/testmodel/probe.py --tower DIR/tower.pt [--layers 2] [--hidden 256] [--heads 8]
        [--lr 2e-3] [--minutes 6] [--look-layer L] [--tile-share 0.3] [--tag NAME]

Trains a fresh language model + projector on a frozen tower (tower.pt from a train.py run) for
--minutes, and every minute prints teacher-forced accuracy of the first answer token per kind on
held-out base views (seed 99, never a training seed) and on held-out tiles that show a character
("tileocr"). "noocr" is the accuracy over the kinds the base view can answer. The scene pools are
cached under --cache so that successive probes start in seconds.
"""
import argparse
import json
import os
import pickle
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration  # noqa: E402

KIND_OF = [("What colour", "colour"), ("What shape", "where"), ("How many", "count"), ("Is there", "exist"),
           ("What character", "ocr")]


def cached_pool(cache, seed, n):
    path = os.path.join(cache, f"pool_{seed}_{n}.pkl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    pool = T.scene_pool(seed, n, print)
    os.makedirs(cache, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(pool, f)
    return pool


def held_out_accuracy(model, tok, batches):
    """Teacher-forced accuracy of each answer's first token, per question kind."""
    model.eval()
    right, total = {}, {}
    with torch.no_grad():
        for enc, _ in batches:
            h = model.model.vision_tower(pixel_values=enc["pixel_values"], output_hidden_states=True).hidden_states[-2][:, 1:]
            feats = model.model.multi_modal_projector(h)
            ids = enc["input_ids"]
            emb = model.get_input_embeddings()(ids)
            emb = emb.masked_scatter((ids == model.config.image_token_id)[..., None], feats.reshape(-1, feats.shape[-1]))
            pred = model.lm_head(model.model.language_model(inputs_embeds=emb, attention_mask=enc["attention_mask"]).last_hidden_state).argmax(-1)
            labels = enc["labels"]
            for b in range(len(ids)):
                questions = [turn.split("<|im_end|>")[0].split("\n")[-1] for turn in tok.decode(ids[b]).split("<|im_start|>user")[1:]]
                starts = [j for j in range(1, labels.shape[1]) if labels[b, j] != -100 and labels[b, j - 1] == -100]
                for q, j in zip(questions, starts):
                    kind = "tileocr" if not bool(enc["base_view"][b]) else next(k for p, k in KIND_OF if q.startswith(p))
                    total[kind] = total.get(kind, 0) + 1
                    right[kind] = right.get(kind, 0) + int(pred[b, j - 1] == labels[b, j])
    model.train()
    acc = {k: round(right[k] / total[k], 2) for k in sorted(total)}
    base = [k for k in total if k not in ("ocr", "tileocr")]
    acc["noocr"] = round(sum(right[k] for k in base) / sum(total[k] for k in base), 3)
    return acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tower", required=True, help="tower.pt from a train.py run (128 wide)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--minutes", type=float, default=6)
    ap.add_argument("--look-layer", type=int, default=None, help="layer whose heads the attention supervision steers")
    ap.add_argument("--tile-share", type=float, default=0.0)
    ap.add_argument("--scenes", type=int, default=3000)
    ap.add_argument("--cache", default="/tmp/fovea-probe")
    ap.add_argument("--tag", default="probe")
    args = ap.parse_args()
    torch.set_num_threads(2)
    pool, held = cached_pool(args.cache, 1, args.scenes), cached_pool(args.cache, 99, 150)
    tok = T.build_tokenizer(os.path.join(args.cache, "tokenizer"))
    vcfg = CLIPVisionConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                            image_size=T.TILE, patch_size=T.PATCH)
    tcfg = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=3 * args.hidden, num_hidden_layers=args.layers,
                       num_attention_heads=args.heads, num_key_value_heads=2, max_position_embeddings=2048,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                       tie_word_embeddings=True)
    cfg = LlavaNextConfig(vision_config=vcfg.to_dict(), text_config=tcfg.to_dict(), image_token_index=tok.convert_tokens_to_ids("<image>"),
                          vision_feature_layer=-2, vision_feature_select_strategy="default", image_grid_pinpoints=T.PINPOINTS,
                          tie_word_embeddings=True)
    torch.manual_seed(1)
    model = LlavaNextForConditionalGeneration._from_config(cfg, attn_implementation="eager")
    model.model.vision_tower.load_state_dict(torch.load(args.tower))
    model.model.vision_tower.requires_grad_(False)
    grounding = T.Grounding(tok)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng, held_rng = np.random.default_rng(2), np.random.default_rng(5)
    batches = ([T.base_only_batch(held_rng, held, tok, 16, 8) for _ in range(6)]
               + [T.base_only_batch(held_rng, held, tok, 16, 8, 1.0) for _ in range(3)])
    start, step, budget, report = time.time(), 0, args.minutes * 60, 60
    while time.time() - start < budget:
        enc, looks = T.base_only_batch(rng, pool, tok, 8, 8, args.tile_share)
        lm, ground, look = T.base_only_loss(model, enc, looks, grounding, look_layer=args.look_layer)
        for g in opt.param_groups:
            g["lr"] = args.lr * T.schedule((time.time() - start) / budget)
        opt.zero_grad(); (lm + ground + look).backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
        step += 1
        if time.time() - start > report:
            report += 60
            print(args.tag, f"t={time.time() - start:.0f}s step={step} answers={lm.item():.3f}",
                  json.dumps(held_out_accuracy(model, tok, batches)), flush=True)
    print(args.tag, "final", step, json.dumps(held_out_accuracy(model, tok, batches)), flush=True)


if __name__ == "__main__":
    main()
