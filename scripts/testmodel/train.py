#!/usr/bin/env python3
"""Trains Fovea's test model: a small LLaVA-NeXT in the exact Hugging Face format.

    python3 scripts/testmodel/train.py --out DIR [--small] [--scenes N] [--vision-minutes M]
                                       [--base-minutes M] [--llava-minutes M] [--tower tower.pt]

Stages (seeded; each runs for a wall-clock budget, so step counts depend on the machine):
 0. tokenizer — byte-level BPE trained with `tokenizers` on the question/answer language, plus
    <image>, <|im_start|>, <|im_end|>, <pad>; ChatML chat template.
    scene pool — N training scenes (seed stream (seed, i), never the evaluation seed), generated
    once in two processes: the processor's partitions (base view + tiles, uint8), per-patch
    targets and questions. Both later stages draw from it.
 1. vision pre-training — a CLIP-style ViT with CLS on the partitions the LLaVA-NeXT processor
    makes. CLS (read at the feature layer, hidden_states[-2]) predicts which colours, shapes and
    colour–shape pairs its partition shows; every patch predicts the colour, shape and printed
    character under it, and in the base view the region of the object under it. Each batch is a
    quarter views drawn uniformly, a quarter base views, a quarter the processor's tiles that
    show a character and a quarter crops of the anyres canvas at random offsets around a printed
    character (with views drawn uniformly the tower reached 26% on character patches in 7
    minutes; with half of them the processor's tiles that show a character, 87% on training
    scenes but 73% on unseen ones). The log reports the patch head on 100 unseen scenes.
    Saves tower.pt (--tower reuses one and skips this stage).
 2a. LLaVA on the base view alone (64 visual tokens), tower frozen, 8 question/answer turns per
    scene, loss on the answers; plus two training-only aids that do not change the model's
    format: a grounding loss (visual tokens read through the tied output embedding name what is
    under their patch) and attention supervision (two heads of the middle layer are pushed onto
    the patches a question is about, two of the layer below onto the question's naming words).
    Without them the language model stayed at the answer priors in every run we made. A share of
    the scenes (--tile-share) is shown as one tile holding printed characters and asked only to
    read them: characters are legible in the tiles alone, and this stage is 5x cheaper per scene.
 2b. LLaVA on the full anyres input, through LlavaNextForConditionalGeneration as transformers
    runs it (the hand-built batches are checked against LlavaNextProcessor's on the first step).
 Then greedy answers on data/eval (500 questions) with transformers, accuracy per kind, in
 training.json and train.log.
"""
import argparse
import json
import math
import multiprocessing
import os
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
from transformers.image_processing_utils import select_best_resolution  # noqa: E402

TILE, PATCH = 112, 14
PINPOINTS = scenes.PINPOINTS
# String content, or the VLM message form (a list of {"type": "image"} / {"type": "text", "text": ...} parts),
# as LLaVA checkpoints' templates take both.
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
                 "{% if message['content'] is string %}{{ message['content'] }}"
                 "{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>\\n' }}"
                 "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
                 "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
COLOURS, SHAPES, CHARS = list(scenes.COLOURS), scenes.SHAPES, scenes.CHARS


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


# MARK: the scene pool

def canvas_geometry(h, w):
    """LLaVA-NeXT's anyres canvas for an h×w image: (canvas h, w), resized (h, w), paste offset (y, x)."""
    ch, cw = select_best_resolution((h, w), PINPOINTS)
    sw, sh = cw / w, ch / h
    if sw < sh:
        nw, nh = cw, min(math.ceil(h * sw), ch)
    else:
        nh, nw = ch, min(math.ceil(w * sh), cw)
    return (ch, cw), (nh, nw), ((ch - nh) // 2, (cw - nw) // 2)


def partitions(img, resample):
    """The processor's partitions of one image before rescaling: the squashed base view, then the
    canvas tiles in row-major order. `img` is a PIL image (RGB or a label map)."""
    w, h = img.size
    (ch, cw), (nh, nw), (py, px) = canvas_geometry(h, w)
    canvas = Image.new(img.mode, (cw, ch), 0)
    canvas.paste(img.resize((nw, nh), resample), (px, py))
    views = [img.resize((TILE, TILE), resample)]
    views += [canvas.crop((x, y, x + TILE, y + TILE)) for y in range(0, ch, TILE) for x in range(0, cw, TILE)]
    return [np.array(v) for v in views]


def patch_majority(label, classes):
    """Most common label value under each 14-px patch of a 112-px view: [64]."""
    g = TILE // PATCH
    cells = label.reshape(g, PATCH, g, PATCH).transpose(0, 2, 1, 3).reshape(g * g, PATCH * PATCH)
    counts = np.stack([(cells == c).sum(1) for c in range(classes)], axis=1)
    return counts.argmax(1), counts


def view_targets(lab_view, char_view, maps):
    """Per-patch targets [64, 4] (colour, shape, character, region; 0 = none) and the CLS presence
    target of one 112-px view, from its object and character label maps (object index + 1)."""
    colour_of, shape_of, char_of, region_of = maps
    n = len(colour_of)
    obj, counts = patch_majority(lab_view, n)
    ch_obj, ch_counts = patch_majority(char_view, n)
    # A patch reads a character if a quarter of it is the character's box. A legible character (its
    # box half a patch or more; in the base view they are a fifth) that straddles four patches covers
    # none that much, so its largest share counts too.
    char_here = np.where((ch_counts.max(1) * 4 >= PATCH * PATCH) & (ch_obj > 0), ch_obj, 0)
    for i in range(1, n):
        j = ch_counts[:, i].argmax()
        if ch_counts[:, i].sum() * 2 >= PATCH * PATCH and ch_counts[j, i] * 8 >= PATCH * PATCH and char_here[j] == 0:
            char_here[j] = i
    patch = np.stack([colour_of[obj], shape_of[obj], char_of[char_here], region_of[obj]], axis=1)
    visible = [i for i in range(1, n) if counts[:, i].sum() >= PATCH * PATCH]  # at least a patch's worth
    t = np.zeros(len(COLOURS) + len(SHAPES) + len(COLOURS) * len(SHAPES), dtype=np.float32)
    for i in visible:
        c, s = colour_of[i] - 1, shape_of[i] - 1
        t[c] = 1; t[len(COLOURS) + s] = 1; t[len(COLOURS) + len(SHAPES) + c * len(SHAPES) + s] = 1
    return patch, t


def scene_record(key):
    """One training scene, everything later stages need: the processor's partitions (uint8), per-patch
    targets (colour, shape, character, region; 0 = none), per-partition presence targets for CLS,
    questions; and for character crops the canvas label maps and the characters' boxes on it."""
    seed, index = key
    rng = np.random.default_rng([seed, index])
    img, objects = scenes.make_scene(rng)
    qs = scenes.questions(rng, objects)
    w, h = img.size
    lab = Image.fromarray(scenes.label_map(objects, w, h))
    chars = np.zeros((h, w), dtype=np.uint8)
    for i, o in enumerate(objects):
        if o["char"]:
            x0, y0, x1, y1 = o["char_box"]
            chars[y0:y1, x0:x1] = i + 1
    views = np.stack(partitions(img, Image.BICUBIC))
    lab_views = partitions(lab, Image.NEAREST)
    char_views = partitions(Image.fromarray(chars), Image.NEAREST)
    maps = (np.array([0] + [COLOURS.index(o["colour"]) + 1 for o in objects]),
            np.array([0] + [SHAPES.index(o["shape"]) + 1 for o in objects]),
            np.array([0] + [CHARS.index(o["char"]) + 1 if o["char"] else 0 for o in objects]),
            np.array([0] + [scenes.REGIONS.index(o["region"]) + 1 for o in objects]))
    patch_t, cls_t = zip(*[view_targets(lv, cv, maps) for lv, cv in zip(lab_views, char_views)])
    canvas_labels, canvas_chars = assemble(lab_views[1:], h, w), assemble(char_views[1:], h, w)
    boxes = []
    for i in np.unique(canvas_chars[canvas_chars > 0]):
        ys, xs = np.nonzero(canvas_chars == i)
        boxes.append((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1))
    return {"key": key, "views": views, "patch": np.stack(patch_t).astype(np.int64), "cls": np.stack(cls_t), "questions": qs,
            "size": (h, w), "maps": maps, "canvas_labels": canvas_labels, "canvas_chars": canvas_chars, "char_boxes": boxes}


def assemble(tiles, h, w):
    """The anyres canvas of an h×w image from its tiles (row-major, as `partitions` cuts them)."""
    (ch, cw), _, _ = canvas_geometry(h, w)
    gh, gw = ch // TILE, cw // TILE
    tiles = np.asarray(tiles)
    return tiles.reshape(gh, gw, TILE, TILE, *tiles.shape[3:]).swapaxes(1, 2).reshape(ch, cw, *tiles.shape[3:])


def character_crop(rng, r):
    """A 112-px crop of the scene's canvas at a random offset that holds one of its printed characters
    whole, with its targets. The processor's tiles put each character at one fixed offset to the
    patch grid; crops show it at many, so the tower learns the letter rather than its pixels."""
    y0, x0, y1, x1 = r["char_boxes"][rng.integers(len(r["char_boxes"]))]
    ch, cw = r["canvas_labels"].shape
    dy = rng.integers(max(0, y1 - TILE), min(y0, ch - TILE) + 1)
    dx = rng.integers(max(0, x1 - TILE), min(x0, cw - TILE) + 1)
    crop = lambda a: a[dy:dy + TILE, dx:dx + TILE]
    h, w = r["size"]
    patch, cls = view_targets(crop(r["canvas_labels"]), crop(r["canvas_chars"]), r["maps"])
    return crop(assemble(r["views"][1:], h, w)), patch, cls


def scene_pool(seed, count, log):
    start = time.time()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool_ = pool.map(scene_record, [(seed, i) for i in range(count)], chunksize=32)
    log(f"scene pool: {count} scenes, {sum(len(r['views']) for r in pool_)} partitions, "
        f"{sum(len(r['questions']) for r in pool_)} questions in {time.time() - start:.0f} s")
    return pool_


MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def normalise(views):
    """uint8 [..., 112, 112, 3] → the processor's float pixels [..., 3, 112, 112]."""
    x = (views.astype(np.float32) * np.float32(1 / 255) - MEAN) / STD
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


# MARK: stage 1

class VisionPretrainer(nn.Module):
    """The tower plus the training-only heads, all read at the feature layer (hidden_states[-2])."""
    def __init__(self, cfg):
        super().__init__()
        self.tower = CLIPVisionModel(cfg)
        d = cfg.hidden_size
        self.norm = nn.LayerNorm(d)
        self.cls_head = nn.Linear(d, len(COLOURS) + len(SHAPES) + len(COLOURS) * len(SHAPES))
        self.patch_head = nn.Linear(d, (len(COLOURS) + 1) + (len(SHAPES) + 1) + (len(CHARS) + 1) + (len(scenes.REGIONS) + 1))

    def forward(self, pixels):
        h = self.norm(self.tower(pixel_values=pixels, output_hidden_states=True).hidden_states[-2])
        return self.cls_head(h[:, 0]), self.patch_head(h[:, 1:])


def schedule(progress, warmup=0.02):
    """Learning-rate factor at `progress` (0…1 of a stage's wall-clock budget — the stages are timed,
    not counted in steps): linear warm-up, then cosine down to a tenth."""
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


def train_vision(cfg, pool, minutes, seed, log, batch=64, crop_share=0.5):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    views = np.concatenate([r["views"] for r in pool])
    patch_t = torch.tensor(np.concatenate([r["patch"] for r in pool]))
    cls_t = torch.tensor(np.concatenate([r["cls"] for r in pool]))
    # Printed characters sit on few views and few patches of those; half of each batch shows one, or
    # the tower learns colours and shapes long before it learns to read. `crop_share` of those are
    # crops at random offsets (`character_crop`), the rest the processor's tiles: from tiles alone the
    # tower read the training scenes' characters far better than unseen ones (87% vs 73% of
    # character patches); from crops alone it generalised but learnt too slowly (40% in 12 min).
    # A quarter of each batch is base views, whose patches also name the region of the object under
    # them: the base view is the only one that shows where things are in the scene.
    with_chars = np.flatnonzero((patch_t[..., 2] > 0).any(1).numpy())
    base = np.concatenate([np.arange(len(r["views"])) == 0 for r in pool])
    base_views = np.flatnonzero(base)
    scenes_with_chars = [r for r in pool if r["char_boxes"]]
    held_out = [scene_record((seed + 1000, i)) for i in range(100)]
    ho_views = torch.from_numpy(normalise(np.concatenate([r["views"] for r in held_out])))
    ho_patch = torch.from_numpy(np.concatenate([r["patch"] for r in held_out]))
    ho_base = torch.from_numpy(np.concatenate([np.arange(len(r["views"])) == 0 for r in held_out]))
    model = VisionPretrainer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    nc, ns, nch = len(COLOURS) + 1, len(SHAPES) + 1, len(CHARS) + 1
    start, step, seen, budget = time.time(), 0, 0, minutes * 60
    while time.time() - start < budget:
        q = batch // 4
        n_crops = round((batch - 2 * q) * crop_share)
        idx = np.concatenate([rng.integers(0, len(views), q), rng.choice(base_views, q),
                              rng.choice(with_chars, batch - 2 * q - n_crops)]).astype(np.int64)
        x, pt, ct = views[idx], patch_t[idx], cls_t[idx]
        if n_crops:
            extra = [character_crop(rng, scenes_with_chars[i]) for i in rng.integers(0, len(scenes_with_chars), n_crops)]
            x = np.concatenate([x, np.stack([e[0] for e in extra])])
            pt = torch.cat([pt, torch.from_numpy(np.stack([e[1] for e in extra]).astype(np.int64))])
            ct = torch.cat([ct, torch.from_numpy(np.stack([e[2] for e in extra]))])
        in_base = torch.from_numpy(np.concatenate([base[idx], np.zeros(n_crops, dtype=bool)]))
        cls_logits, patch_logits = model(torch.from_numpy(normalise(x)))
        # Object patches are a minority; weigh them up so the heads do not settle on "background".
        # Reading is learnt last (colour, shape and region are done within half the stage): it
        # counts double.
        on = (pt[..., 0] > 0).float() * 3 + 1
        def ce(logits, target, weight):
            return (F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none") * weight.reshape(-1)).sum() / weight.sum().clamp(min=1)
        loss_cls = F.binary_cross_entropy_with_logits(cls_logits, ct)
        loss_patch = (ce(patch_logits[..., :nc], pt[..., 0], on) + ce(patch_logits[..., nc:nc + ns], pt[..., 1], on)
                      + 2 * ce(patch_logits[..., nc + ns:nc + ns + nch], pt[..., 2], (pt[..., 2] > 0).float() * 8 + 1)
                      + ce(patch_logits[..., nc + ns + nch:], pt[..., 3], ((pt[..., 3] > 0) & in_base[:, None]).float()))
        loss = loss_cls * 4 + loss_patch
        for g in opt.param_groups:
            g["lr"] = 2e-3 * schedule((time.time() - start) / budget)
        opt.zero_grad(); loss.backward(); opt.step()
        step += 1; seen += batch
        if step % 50 == 0:
            with torch.no_grad():
                on_obj = pt[..., 0] > 0
                acc_c = (patch_logits[..., :nc].argmax(-1) == pt[..., 0])[on_obj].float().mean().item()
                acc_s = (patch_logits[..., nc:nc + ns].argmax(-1) == pt[..., 1])[on_obj].float().mean().item()
                has_ch = pt[..., 2] > 0
                acc_ch = (patch_logits[..., nc + ns:nc + ns + nch].argmax(-1) == pt[..., 2])[has_ch].float().mean().item()
            log(f"vision step {step} ({seen / (time.time() - start):.0f} views/s): cls {loss_cls.item():.3f} "
                f"patch {loss_patch.item():.3f}; on objects colour {acc_c:.2f} shape {acc_s:.2f}, characters {acc_ch:.2f}")
        if step % 500 == 0:
            log(f"  100 unseen scenes: {json.dumps(held_out_patches(model, ho_views, ho_patch, ho_base))}")
    held = held_out_patches(model, ho_views, ho_patch, ho_base)
    log(f"  100 unseen scenes: {json.dumps(held)}")
    return model.tower, {"steps": step, "views": seen, "seconds": time.time() - start, "final_loss": loss.item(),
                         "held_out_patches": held}


def held_out_patches(model, views, patch, base):
    """The patch head on scenes outside the pool: characters read right on character patches (all
    views), shape and region on object patches of the base views."""
    nc, ns, nch = len(COLOURS) + 1, len(SHAPES) + 1, len(CHARS) + 1
    with torch.no_grad():
        _, logits = model(views)
    def acc(lo, hi, column, on):
        return round((logits[..., lo:hi].argmax(-1) == patch[..., column])[on].float().mean().item(), 3)
    on_base = (patch[..., 0] > 0) & base[:, None]
    return {"characters": acc(nc + ns, nc + ns + nch, 2, patch[..., 2] > 0), "base shape": acc(nc, nc + ns, 1, on_base),
            "base region": acc(nc + ns + nch, logits.shape[-1], 3, on_base)}


# MARK: stage 2

def pick_turns(rng, qs, turns):
    """Up to `turns` questions, kinds taken in turn, so that the plentiful existence questions do not crowd
    out the rest."""
    by_kind = {}
    for q in qs:
        by_kind.setdefault(q[0], []).append(q)
    queues = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(by_kind.items())]
    order = rng.permutation(len(queues))
    picked = []
    while len(picked) < turns and any(queues):
        for k in order:
            if queues[k] and len(picked) < turns:
                picked.append(queues[k].pop())
    return [picked[i] for i in rng.permutation(len(picked))]


def conversation(picked):
    msgs = []
    for i, (_, q, a) in enumerate(picked):
        msgs.append({"role": "user", "content": ("<image>\n" if i == 0 else "") + q})
        msgs.append({"role": "assistant", "content": a})
    return msgs


def image_token_count(processor, h, w):
    # As LlavaNextProcessor counts: its feature count includes CLS, which the "default" strategy drops.
    return processor._get_number_of_features(h, w, TILE, TILE) - 1


def llava_batch(rng, pool, processor, tok, n, turns):
    """A batch built the way LlavaNextProcessor builds it (checked against it in `check_batch`)."""
    texts, pixel_lists, sizes, records = [], [], [], []
    for _ in range(n):
        r = pool[rng.integers(len(pool))]
        msgs = conversation(pick_turns(rng, r["questions"], turns))
        text = tok.apply_chat_template(msgs, tokenize=False)
        h, w = r["size"]
        texts.append(text.replace("<image>", "<image>" * image_token_count(processor, h, w), 1))
        pixel_lists.append(r["views"]); sizes.append((h, w)); records.append((r, msgs))
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    most = max(len(v) for v in pixel_lists)
    pixels = np.zeros((n, most, 3, TILE, TILE), dtype=np.float32)
    for i, v in enumerate(pixel_lists):
        pixels[i, :len(v)] = normalise(v)
    enc["pixel_values"] = torch.from_numpy(pixels)
    enc["image_sizes"] = torch.tensor(sizes)
    enc["labels"] = answer_labels(enc["input_ids"], tok)
    return enc, records


def where_to_look(kind, question, patch):
    """The patches of one view that hold what a question asks about ([64] bool), or None (not in view)."""
    words = question.rstrip("?").split()
    colours = [COLOURS.index(w) + 1 for w in words if w in COLOURS]
    shapes = [SHAPES.index(w) + 1 for w in words if w in SHAPES]
    if kind == "where":
        mask = patch[:, 3] == scenes.REGIONS.index(question.split(" in the ")[1].rstrip("?")) + 1
    else:
        mask = np.ones(len(patch), dtype=bool)
        if colours:
            mask &= patch[:, 0] == colours[0]
        if shapes:
            mask &= patch[:, 1] == shapes[0]
        if kind == "ocr" and (mask & (patch[:, 2] > 0)).any():
            mask &= patch[:, 2] > 0  # reading: the character's own patches
    return mask if mask.any() else None


def tile_with_text(r):
    """A tile of the scene in which some object's printed character is legible, with the reading
    questions it answers — or None. Characters are ~8 px in the base view: only tiles teach reading."""
    best = None
    for v in range(1, len(r["views"])):
        patch = r["patch"][v]
        qs = []
        for k, q, a in r["questions"]:
            mask = where_to_look(k, q, patch) if k == "ocr" else None
            if mask is not None and (patch[mask, 2] > 0).any():
                qs.append((k, q, a))
        if qs and (best is None or len(qs) > len(best[1])):
            best = (v, qs)
    return best


def base_only_batch(rng, pool, tok, n, turns, tile_share=0.0):
    """Curriculum batch: the same conversations over the 64 base-view tokens alone; with probability
    `tile_share` a scene is shown instead as one tile holding printed characters, asked to read them."""
    texts, pixels, targets, looks, base = [], [], [], [], []
    side = TILE // PATCH
    for _ in range(n):
        r = pool[rng.integers(len(pool))]
        tile = tile_with_text(r) if tile_share and rng.random() < tile_share else None
        v, picked = (tile[0], tile[1][:turns]) if tile else (0, pick_turns(rng, r["questions"], turns))
        looks.append([where_to_look(k, q, r["patch"][v]) for k, q, _ in picked])
        texts.append(tok.apply_chat_template(conversation(picked), tokenize=False).replace("<image>", "<image>" * (side * side), 1))
        pixels.append(r["views"][v]); targets.append(r["patch"][v]); base.append(v == 0)
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc["pixel_values"] = torch.from_numpy(normalise(np.stack(pixels)))
    enc["patch_targets"] = torch.from_numpy(np.stack(targets))
    enc["base_view"] = torch.tensor(base)
    enc["labels"] = answer_labels(enc["input_ids"], tok)
    return enc, looks


def base_only_loss(model, enc, looks, grounding, look_heads=2, look_layer=None):
    """The LLaVA forward pass with one view's features (the base view, or a tile from
    `base_only_batch`) in place of the image tokens, plus the grounding loss on those features.
    `look_layer` (default: the middle one) carries the attention supervision; probe.py varies it."""
    with torch.no_grad():
        h = model.model.vision_tower(pixel_values=enc["pixel_values"], output_hidden_states=True).hidden_states[-2][:, 1:]
    feats = model.model.multi_modal_projector(h)
    ids = enc["input_ids"]
    emb = model.get_input_embeddings()(ids)
    mask = (ids == model.config.image_token_id)[..., None]
    emb = emb.masked_scatter(mask, feats.reshape(-1, feats.shape[-1]).to(emb.dtype))
    out = model.model.language_model(inputs_embeds=emb, attention_mask=enc["attention_mask"], output_attentions=True)
    logits = model.lm_head(out.last_hidden_state[:, :-1])
    labels = enc["labels"]
    lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    # Attention supervision (training only): at the position that predicts each answer, the first
    # `look_heads` heads of one middle layer should rest on the patches the question is about.
    # Finding the object is the step a small language model trained from scratch is slowest to
    # discover; telling one head where to look lets the rest of the circuit form around it.
    # The hop before it is supervised the same way: the first heads of the layer below gather the
    # question's naming words (colour, shape, place) to that position.
    if look_layer is None:
        look_layer = len(out.attentions) // 2
    att = out.attentions[look_layer][:, :look_heads]
    gather = out.attentions[look_layer - 1][:, :look_heads]
    look, count = 0, 0
    for b in range(len(ids)):
        row = ids[b].tolist()
        image_start = int(mask[b, :, 0].nonzero()[0])
        starts = [j for j in range(1, labels.shape[1]) if labels[b, j] != -100 and labels[b, j - 1] == -100]
        for j, where in zip(starts, looks[b]):
            q_start = [k for k in range(j) if row[k] == grounding.turn_start][-2]  # the user turn before "assistant"
            named = [k for k in range(q_start, j) if row[k] in grounding.naming]
            if named:
                look = look - torch.log(gather[b, :, j - 1, named].sum(-1) + 1e-6).mean(); count += 1
            if where is not None:
                mass = att[b, :, j - 1, image_start:image_start + len(where)][:, torch.from_numpy(where)].sum(-1)
                look = look - torch.log(mass + 1e-6).mean(); count += 1
    return lm, grounding(model, feats, enc["patch_targets"], enc["base_view"]), look / max(count, 1)


def single_token(tok, word):
    ids = tok.encode(word, add_special_tokens=False)
    assert len(ids) == 1, f"answer word {word!r} is {len(ids)} tokens"
    return ids[0]


class Grounding:
    """Training-only loss: each visual token, read through the (tied) output embedding, names what lies
    under its patch — the colour, shape and character as answer words ("red") and as question words
    (" red"), and, in the base view, which knows where it is in the scene, the object's region
    (" top", " left", …). It puts the projector's output where the words live, so the language model
    has something to match and copy before it has learned where to look."""

    def __init__(self, tok):
        ids = lambda words, prefix="": torch.tensor([single_token(tok, prefix + w) for w in words])
        self.groups = [(0, ids(COLOURS)), (1, ids(SHAPES)), (2, ids(CHARS)), (0, ids(COLOURS, " ")), (1, ids(SHAPES, " "))]
        self.places = ids(["top", "bottom", "left", "right", "center"], " ")
        places = np.zeros((len(scenes.REGIONS) + 1, 5), dtype=np.float32)
        for i, name in enumerate(scenes.REGIONS):
            for j, word in enumerate(["top", "bottom", "left", "right", "center"]):
                places[i + 1, j] = word in name.split()
        self.place_targets = torch.from_numpy(places)
        self.naming = set(torch.cat([ids for _, ids in self.groups[3:]] + [self.places]).tolist())
        self.turn_start = tok.convert_tokens_to_ids("<|im_start|>")

    def __call__(self, model, feats, targets, base):
        """feats [N, 64, D] projected visual tokens, targets [N, 64, 4], base [N] bool: a base view."""
        logits = model.lm_head(feats)
        loss = 0
        for column, ids in self.groups:
            t = targets[..., column]
            on = t > 0
            if on.any():
                loss = loss + F.cross_entropy(logits[..., ids][on], t[on] - 1)
        region = targets[..., 3]
        on = (region > 0) & base[:, None]
        if on.any():
            loss = loss + F.binary_cross_entropy_with_logits(logits[..., self.places][on], self.place_targets[region[on]])
        return loss


def full_grounding_loss(model, records, grounding):
    views = torch.from_numpy(normalise(np.concatenate([r["views"] for r, _ in records])))
    targets = torch.from_numpy(np.concatenate([r["patch"] for r, _ in records]))
    base = torch.from_numpy(np.concatenate([np.arange(len(r["views"])) == 0 for r, _ in records]))
    with torch.no_grad():
        h = model.model.vision_tower(pixel_values=views, output_hidden_states=True).hidden_states[-2][:, 1:]
    return grounding(model, model.model.multi_modal_projector(h), targets, base)


def answer_labels(input_ids, tok):
    """Loss on the assistant's answers and their <|im_end|> only."""
    labels = torch.full_like(input_ids, -100)
    start_id, end_id = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    assistant = tok.encode("assistant\n", add_special_tokens=False)
    for b in range(input_ids.shape[0]):
        ids = input_ids[b].tolist()
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
    return labels


def check_batch(enc, records, processor, tok):
    """The hand-built batch must equal what LlavaNextProcessor makes from the same scenes."""
    for b, (r, msgs) in enumerate(records[:3]):
        img, _ = scenes.make_scene(np.random.default_rng(list(r["key"])))
        ref = processor(images=img, text=tok.apply_chat_template(msgs, tokenize=False), return_tensors="pt")
        ids = enc["input_ids"][b][enc["attention_mask"][b] > 0]
        assert torch.equal(ids, ref["input_ids"][0]), "prompt ids differ from the processor's"
        v = len(r["views"])
        assert ref["pixel_values"].shape[1] == v, "partition count differs from the processor's"
        err = (enc["pixel_values"][b, :v] - ref["pixel_values"][0]).abs().max().item()
        assert err < 1e-5, f"pixels differ from the processor's by {err}"


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


def scalar(x):
    return float(x.detach()) if torch.is_tensor(x) else float(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/fovea-test-llava")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenes", type=int, default=10000, help="training scenes, generated once and shared by both stages")
    ap.add_argument("--vision-minutes", type=float, default=15)
    ap.add_argument("--base-minutes", type=float, default=15, help="stage 2a: base view only")
    ap.add_argument("--llava-minutes", type=float, default=14, help="stage 2b: full anyres input")
    ap.add_argument("--tile-share", type=float, default=0.3,
                    help="stage 2a: share of scenes shown as one tile with printed characters, asked to read them")
    ap.add_argument("--turns", type=int, default=8, help="question/answer turns packed per scene")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--grounding", type=float, default=1.0, help="weight of the training-only grounding loss")
    ap.add_argument("--look", type=float, default=1.0, help="weight of the training-only attention supervision (base stage)")
    ap.add_argument("--crop-share", type=float, default=0.5,
                    help="stage 1: share of the character half of each batch drawn as random-offset crops, the rest as the processor's tiles")
    ap.add_argument("--tower", help="reuse a stage-1 tower (tower.pt from an earlier run) instead of training one")
    ap.add_argument("--init", help="continue from a model this script saved (its tower too; stage 1 is skipped)")
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
    pool = scene_pool(args.seed, args.scenes, log)
    vcfg = CLIPVisionConfig(hidden_size=64 if args.small else 128, intermediate_size=256 if args.small else 512,
                            num_hidden_layers=4, num_attention_heads=4, image_size=TILE, patch_size=PATCH)
    if args.init:
        tower, vstats = None, {"continued_from": args.init}
    elif args.tower:
        tower, vstats = CLIPVisionModel(vcfg), {"reused": args.tower}
        tower.load_state_dict(torch.load(args.tower))
    else:
        tower, vstats = train_vision(vcfg, pool, args.vision_minutes, args.seed, log, crop_share=args.crop_share)
        torch.save(tower.state_dict(), os.path.join(args.out, "tower.pt"))

    # Two layers for both sizes: with the same aids, a 4-layer 256-wide model was still at the answer
    # priors after 600 base-stage steps (also with the supervised heads moved to layers 0/1), where
    # the 2-layer 256-wide one had left them by 550 — for a model this size, depth slows learning.
    tcfg = LlamaConfig(vocab_size=len(tok), hidden_size=128 if args.small else 256, intermediate_size=384 if args.small else 768,
                       num_hidden_layers=2, num_attention_heads=4 if args.small else 8, num_key_value_heads=2,
                       max_position_embeddings=2048, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    cfg = LlavaNextConfig(vision_config=vcfg.to_dict(), text_config=tcfg.to_dict(), image_token_index=tok.convert_tokens_to_ids("<image>"),
                          vision_feature_layer=-2, vision_feature_select_strategy="default", image_grid_pinpoints=PINPOINTS,
                          tie_word_embeddings=True)
    torch.manual_seed(args.seed)
    # Eager attention: the base stage reads attention probabilities (sdpa does not return them).
    if args.init:
        model = LlavaNextForConditionalGeneration.from_pretrained(args.init, dtype=torch.float32, attn_implementation="eager")
        assert model.config.text_config.vocab_size == len(tok), "the saved model's tokenizer differs from this one"
    else:
        model = LlavaNextForConditionalGeneration._from_config(cfg, attn_implementation="eager")
        model.model.vision_tower.load_state_dict(tower.state_dict())
    # The tower stays as stage 1 left it: its CLS attention is what HiRED reads, and nothing in this
    # stage would keep it meaningful. It also spares the tower's backward pass.
    model.model.vision_tower.requires_grad_(False)
    ip = LlavaNextImageProcessorPil(size={"shortest_edge": TILE}, crop_size={"height": TILE, "width": TILE},
                                    image_grid_pinpoints=PINPOINTS)
    processor = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    grounding = Grounding(tok)
    params = [p for p in model.parameters() if p.requires_grad]
    peak = args.lr
    opt = torch.optim.AdamW(params, lr=peak, weight_decay=0.01, betas=(0.9, 0.98))
    rng = np.random.default_rng(args.seed + 1)
    batch_size = 8
    model.train()
    # Stage 2a: the base view alone (64 tokens instead of ~340), where learning to find the object a
    # question names among the visual tokens is cheap; stage 2b: the full anyres input.
    stages = [("base", args.base_minutes), ("full", args.llava_minutes)]
    total_minutes = args.base_minutes + args.llava_minutes
    start, step = time.time(), 0
    lstats = {}
    for stage, minutes in stages:
        stage_start, stage_step = time.time(), 0
        while time.time() - stage_start < minutes * 60:
            if stage == "base":
                lm, ground, look = base_only_loss(model, *base_only_batch(rng, pool, tok, batch_size, args.turns, args.tile_share), grounding)
            else:
                batch, records = llava_batch(rng, pool, processor, tok, batch_size, args.turns)
                if stage_step == 0:
                    check_batch(batch, records, processor, tok)
                lm = model(**batch).loss
                ground = full_grounding_loss(model, records, grounding) if args.grounding else 0
                look = 0
            loss = lm + args.grounding * ground + args.look * look
            for g in opt.param_groups:
                g["lr"] = peak * schedule((time.time() - start) / (total_minutes * 60))
            opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
            step += 1; stage_step += 1
            if step % 25 == 0:
                log(f"llava {stage} step {stage_step} ({stage_step * batch_size / (time.time() - stage_start):.1f} scenes/s): "
                    f"answers {lm.item():.3f} grounding {scalar(ground):.3f} looking {scalar(look):.3f}")
            if stage_step % 400 == 0:  # progress only: nothing is selected on it
                acc = evaluate(model, processor, tok, "data/eval", 100)
                log(f"  first 100 held-out: {json.dumps(acc)}")
        lstats[stage] = {"steps": stage_step, "scenes": stage_step * batch_size, "seconds": time.time() - stage_start,
                         "final_loss": loss.item() if stage_step else None}
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    acc = evaluate(model, processor, tok, "data/eval", args.eval_limit, log)
    log(f"held-out accuracy: {json.dumps(acc)}")
    json.dump({"vision": vstats, "llava": lstats, "accuracy": acc, "wall_seconds": time.time() - t0, "seed": args.seed,
               "command": " ".join(sys.argv)}, open(os.path.join(args.out, "training.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
