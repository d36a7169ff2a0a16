#!/usr/bin/env python3
"""Trains Fovea's test model: a small LLaVA-NeXT in the exact Hugging Face format.

    python3 scripts/testmodel/train.py --out models/fovea-test-llava [--vision-minutes 8] [--llava-minutes 30]

Stages (all seeded):
 0. tokenizer — byte-level BPE trained with `tokenizers` on the question/answer language, plus
    <image>, <|im_start|>, <|im_end|>, <pad>; ChatML chat template.
 1. vision pre-training — a CLIP-style ViT with CLS on 112-px views of scenes (tiles and whole-scene
    base views). CLS (read at the feature layer, hidden_states[-2]) predicts which colours, shapes
    and colour–shape pairs are present; every patch predicts the colour and shape under it and
    whether a character is printed there (the dense loss that makes patch features carry identity).
 2. LLaVA-NeXT — tower + projector + image_newline + a small Llama with grouped-query attention,
    trained end to end on 3 question/answer turns per scene (loss on answers only).
 Then greedy answers on data/eval (500 questions) with transformers, accuracy per kind.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlavaNextConfig,  # noqa: E402
                          LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil, LlavaNextProcessor,
                          PreTrainedTokenizerFast)

TILE, PATCH = 112, 14
PINPOINTS = [[112, 224], [224, 112], [224, 224], [336, 112], [112, 336]]
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                 "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
COLOURS, SHAPES = list(scenes.COLOURS), scenes.SHAPES


def build_tokenizer(out):
    rng = np.random.default_rng(7)
    corpus = []
    for _ in range(3000):
        _, objects = None, None
        c, s, r = rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(scenes.REGIONS)
        corpus += [f"What colour is the {s}?", f"What shape is in the {r}?", f"How many {c} objects are there?",
                   f"Is there a {c} {s}?", f"What character is written on the {c} {s}?", c, s, "yes", "no"]
    corpus += list(scenes.CHARS) + [str(i) for i in range(10)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<|im_start|>", "<|im_end|>", "<image>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   extra_special_tokens={"image_token": "<image>"})
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


# MARK: stage 1

class VisionPretrainer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tower = CLIPVisionModel(cfg)
        d = cfg.hidden_size
        self.norm = nn.LayerNorm(d)
        self.cls_head = nn.Linear(d, len(COLOURS) + len(SHAPES) + len(COLOURS) * len(SHAPES))
        self.patch_head = nn.Linear(d, (len(COLOURS) + 1) + (len(SHAPES) + 1) + 2)

    def forward(self, pixels):
        h = self.norm(self.tower(pixel_values=pixels, output_hidden_states=True).hidden_states[-2])
        return self.cls_head(h[:, 0]), self.patch_head(h[:, 1:])


def view(rng, img, objects):
    """A 112-px view as the LLaVA-NeXT processor would show it: a tile of the anyres canvas or the base image."""
    w, h = img.size
    lab = scenes.label_map(objects, w, h)
    chars = np.zeros((h, w), dtype=np.uint8)
    for i, o in enumerate(objects):
        if o["char"]:
            x0, y0, x1, y1 = o["box"]
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            r = int(min(w, h) * 0.035)
            chars[max(cy - r, 0):cy + r, max(cx - r, 0):cx + r] = 1
    if rng.random() < 0.3:
        size = (TILE, TILE)
        im, lb, ch = img.resize(size, Image.BICUBIC), Image.fromarray(lab).resize(size, Image.NEAREST), Image.fromarray(chars).resize(size, Image.NEAREST)
    else:
        bh, bw = scenes_best(h, w)
        scale = min(bw / w, bh / h)
        nw, nh = min(math.ceil(w * scale), bw), min(math.ceil(h * scale), bh)
        im, lb, ch = img.resize((nw, nh), Image.BICUBIC), Image.fromarray(lab).resize((nw, nh), Image.NEAREST), Image.fromarray(chars).resize((nw, nh), Image.NEAREST)
        x0 = int(rng.integers(0, max(nw - TILE, 0) + 1)) // 16 * 16 if nw > TILE else 0
        y0 = int(rng.integers(0, max(nh - TILE, 0) + 1)) // 16 * 16 if nh > TILE else 0
        box = (x0, y0, x0 + TILE, y0 + TILE)
        im, lb, ch = im.crop(box), lb.crop(box), ch.crop(box)
    return np.array(im), np.array(lb), np.array(ch)


def scenes_best(h, w):
    best, maxe, minw = None, 0, float("inf")
    for ph, pw in PINPOINTS:
        s = min(pw / w, ph / h)
        e = min(int(w * s) * int(h * s), w * h)
        waste = pw * ph - e
        if e > maxe or (e == maxe and waste < minw):
            best, maxe, minw = (ph, pw), e, waste
    return best


MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def vision_batch(rng, stream, n):
    xs, cls_t, patch_c, patch_s, patch_ch = [], [], [], [], []
    for _ in range(n):
        img, objects, _ = next(stream)
        im, lb, ch = view(rng, img, objects)
        xs.append(((im.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1))
        present = set(int(v) - 1 for v in np.unique(lb) if v > 0)
        t = np.zeros(len(COLOURS) + len(SHAPES) + len(COLOURS) * len(SHAPES), dtype=np.float32)
        for i in present:
            ci, si = COLOURS.index(objects[i]["colour"]), SHAPES.index(objects[i]["shape"])
            t[ci] = 1; t[len(COLOURS) + si] = 1; t[len(COLOURS) + len(SHAPES) + ci * len(SHAPES) + si] = 1
        cls_t.append(t)
        g = TILE // PATCH
        pc, ps, pch = [], [], []
        for py in range(g):
            for px in range(g):
                cell = lb[py * PATCH:(py + 1) * PATCH, px * PATCH:(px + 1) * PATCH]
                vals, counts = np.unique(cell, return_counts=True)
                idx = int(vals[np.argmax(counts)])
                if idx == 0:
                    pc.append(0); ps.append(0)
                else:
                    o = objects[idx - 1]
                    pc.append(COLOURS.index(o["colour"]) + 1); ps.append(SHAPES.index(o["shape"]) + 1)
                pch.append(int(ch[py * PATCH:(py + 1) * PATCH, px * PATCH:(px + 1) * PATCH].mean() > 0.3))
        patch_c.append(pc); patch_s.append(ps); patch_ch.append(pch)
    return (torch.tensor(np.stack(xs)), torch.tensor(np.stack(cls_t)), torch.tensor(patch_c), torch.tensor(patch_s),
            torch.tensor(patch_ch))


def train_vision(cfg, minutes, seed, log):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    stream = scenes.training_stream(seed)
    model = VisionPretrainer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    start, step, seen = time.time(), 0, 0
    while time.time() - start < minutes * 60:
        x, ct, pc, ps, pch = vision_batch(rng, stream, 32)
        cls_logits, patch_logits = model(x)
        nc, ns = len(COLOURS) + 1, len(SHAPES) + 1
        loss = (F.binary_cross_entropy_with_logits(cls_logits, ct)
                + F.cross_entropy(patch_logits[..., :nc].reshape(-1, nc), pc.reshape(-1))
                + F.cross_entropy(patch_logits[..., nc:nc + ns].reshape(-1, ns), ps.reshape(-1))
                + F.cross_entropy(patch_logits[..., nc + ns:].reshape(-1, 2), pch.reshape(-1)))
        opt.zero_grad(); loss.backward(); opt.step()
        step += 1; seen += 32
        if step % 25 == 0:
            log(f"vision step {step} ({seen / (time.time() - start):.0f} img/s): loss {loss.item():.3f}")
    return model.tower, {"steps": step, "images": seen, "seconds": time.time() - start, "final_loss": loss.item()}


# MARK: stage 2

def conversation(rng, qs, turns=3):
    picked = [qs[i] for i in rng.permutation(len(qs))[:turns]]
    return picked


def llava_batch(rng, stream, processor, tok, n):
    texts, images, answer_spans = [], [], []
    for _ in range(n):
        img, objects, qs = next(stream)
        turns = conversation(rng, qs)
        msgs = []
        for i, (_, q, a) in enumerate(turns):
            msgs.append({"role": "user", "content": ("<image>\n" if i == 0 else "") + q})
            msgs.append({"role": "assistant", "content": a})
        texts.append(tok.apply_chat_template(msgs, tokenize=False))
        images.append(img)
    enc = processor(images=images, text=texts, return_tensors="pt", padding=True)
    labels = torch.full_like(enc["input_ids"], -100)
    start_id, end_id = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    assistant = tok.encode("assistant\n", add_special_tokens=False)
    for b in range(enc["input_ids"].shape[0]):
        ids = enc["input_ids"][b].tolist()
        i = 0
        while i < len(ids):
            if ids[i] == start_id and ids[i + 1:i + 1 + len(assistant)] == assistant:
                j = i + 1 + len(assistant)
                while j < len(ids) and ids[j] != end_id:
                    labels[b, j] = ids[j]; j += 1
                if j < len(ids):
                    labels[b, j] = end_id
                i = j
            i += 1
    enc["labels"] = labels
    return enc


def evaluate(model, processor, tok, folder, limit=None, log=print):
    rows = [json.loads(l) for l in open(os.path.join(folder, "questions.jsonl"))][:limit]
    correct, total = {}, {}
    model.eval()
    with torch.no_grad():
        for r in rows:
            img = Image.open(os.path.join(folder, r["image"]))
            text = tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}], tokenize=False,
                                           add_generation_prompt=True)
            enc = processor(images=img, text=text, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=4, do_sample=False)
            answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
            k = r["kind"]
            total[k] = total.get(k, 0) + 1
            correct[k] = correct.get(k, 0) + (answer == r["answer"])
    model.train()
    acc = {k: correct[k] / total[k] for k in total}
    acc["all"] = sum(correct.values()) / sum(total.values())
    return acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/fovea-test-llava")
    ap.add_argument("--vision-minutes", type=float, default=8)
    ap.add_argument("--llava-minutes", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--small", action="store_true", help="the ≤ 3 MB variant for unit tests")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "w")
    def log(msg):
        print(msg, flush=True); logf.write(msg + "\n"); logf.flush()

    t0 = time.time()
    tok = build_tokenizer(args.out)
    vcfg = CLIPVisionConfig(hidden_size=96 if args.small else 128, intermediate_size=384 if args.small else 512,
                            num_hidden_layers=4, num_attention_heads=4, image_size=TILE, patch_size=PATCH)
    tower, vstats = train_vision(vcfg, args.vision_minutes, args.seed, log)

    tcfg = LlamaConfig(vocab_size=len(tok), hidden_size=128 if args.small else 256, intermediate_size=384 if args.small else 768,
                       num_hidden_layers=2 if args.small else 4, num_attention_heads=4 if args.small else 8, num_key_value_heads=2,
                       max_position_embeddings=2048, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    cfg = LlavaNextConfig(vision_config=vcfg.to_dict(), text_config=tcfg.to_dict(), image_token_index=tok.convert_tokens_to_ids("<image>"),
                          vision_feature_layer=-2, vision_feature_select_strategy="default", image_grid_pinpoints=PINPOINTS,
                          tie_word_embeddings=True)
    torch.manual_seed(args.seed)
    model = LlavaNextForConditionalGeneration(cfg)
    model.model.vision_tower.load_state_dict(tower.state_dict())
    ip = LlavaNextImageProcessorPil(size={"shortest_edge": TILE}, crop_size={"height": TILE, "width": TILE},
                                    image_grid_pinpoints=PINPOINTS)
    processor = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    groups = [{"params": [p for n, p in model.named_parameters() if "vision_tower" in n], "lr": 2e-4},
              {"params": [p for n, p in model.named_parameters() if "vision_tower" not in n], "lr": 1.5e-3}]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    rng = np.random.default_rng(args.seed + 1)
    stream = scenes.training_stream(args.seed + 1)
    start, step, seen = time.time(), 0, 0
    model.train()
    while time.time() - start < args.llava_minutes * 60:
        batch = llava_batch(rng, stream, processor, tok, 8)
        loss = model(**batch).loss
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
        step += 1; seen += 8
        if step % 20 == 0:
            log(f"llava step {step} ({seen / (time.time() - start):.1f} img/s): loss {loss.item():.3f}")
    lstats = {"steps": step, "images": seen, "seconds": time.time() - start, "final_loss": loss.item()}
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    acc = evaluate(model, processor, tok, "data/eval", args.eval_limit, log)
    log(f"held-out accuracy: {json.dumps(acc)}")
    json.dump({"vision": vstats, "llava": lstats, "accuracy": acc, "wall_seconds": time.time() - t0, "seed": args.seed,
               "command": " ".join(sys.argv)}, open(os.path.join(args.out, "training.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
