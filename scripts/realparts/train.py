#!/usr/bin/env python3
"""Trains fovea-dino-smol's new weights — the projector (384 → 576 → 576), `image_newline` and,
when the projector alone falls short, a rank-16 LoRA on SmolLM2's attention — on frozen real
parts (DINOv2-S/14, SmolLM2-135M-Instruct), from the synthetic scenes of
scripts/testmodel/scenes.py. CPU, time-bounded stages:

    python3 scripts/realparts/assemble.py ... --out /tmp/untrained        # no --trained
    python3 scripts/realparts/train.py --model /tmp/untrained --out /tmp/run

A. projector only, base view only (the whole scene squashed into one 224-px tile: 256 tokens),
   four scenes a step — LLaVA's first stage on the view that is cheapest to run;
B. projector only, full anyres input (base + 224-px tiles, unpad, newline), one scene a step;
   then a held-out probe (the first --probe questions of data/eval, through transformers'
   own generate on the real tower, not the cache);
C. only if the probe misses the bar (85% overall, 70% every kind): LoRA (q, k, v, o; rank 16,
   α 32) plus the projector, full input.
Every scene is a fresh draw from seed stream `--seed` (never 2026, the held-out set) until the
pool holds --scenes; each step then mixes one new scene with pooled ones. The tower is frozen,
so its features (hidden state −2, CLS dropped, as `vision_feature_layer`/`default` select) are
computed once per scene and cached in bfloat16; the projector, packing
(`pack_image_features`) and language model run as transformers runs them, under CPU bfloat16
autocast. Writes trained.safetensors (projector and newline float32; LoRA A and B float16 with
α/r folded into B, for assemble.py to merge), train.log and training.json into --out.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testmodel"))
import scenes  # noqa: E402

TILE = 224
BAR, KIND_BAR = 0.85, 0.70


class LoRA(torch.nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.A = torch.nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.scale


def pick_turns(rng, qs, turns):
    """Up to `turns` questions, kinds taken in turn so plentiful kinds do not crowd out the rest."""
    by_kind = {}
    for q in qs:
        by_kind.setdefault(q[0], []).append(q)
    queues = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(by_kind.items())]
    picked = []
    while len(picked) < turns and any(queues):
        for k in rng.permutation(len(queues)):
            if queues[k] and len(picked) < turns:
                picked.append(queues[k].pop())
    return [picked[i] for i in rng.permutation(len(picked))]


def conversation(picked):
    msgs = []
    for i, (_, q, a) in enumerate(picked):
        msgs.append({"role": "user", "content": ("<image>\n" if i == 0 else "") + q})
        msgs.append({"role": "assistant", "content": a})
    return msgs


class Trainer:
    def __init__(self, args, log):
        self.args, self.log = args, log
        self.model = LlavaNextForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32)
        self.proc = LlavaNextProcessor.from_pretrained(args.model)
        self.tok = self.proc.tokenizer
        self.image_id = self.model.config.image_token_id
        self.end_id = self.tok.convert_tokens_to_ids("<|im_end|>")
        self.assistant = self.tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
        for p in self.model.parameters():
            p.requires_grad_(False)
        torch.manual_seed(args.seed)
        core = self.model.model
        for m in core.multi_modal_projector.modules():
            if isinstance(m, torch.nn.Linear):  # transformers' own init for a missing projector
                torch.nn.init.normal_(m.weight, std=0.02); torch.nn.init.zeros_(m.bias)
        core.image_newline.data.normal_(0, 1 / math.sqrt(core.image_newline.numel()))
        self.stream = scenes.training_stream(args.seed)
        self.rng = np.random.default_rng(args.seed + 1000)
        self.pool = []
        self.lora = {}
        self.mu = self.sigma = None  # per-channel feature standardisation, folded into linear_1 at save

    # --- data -------------------------------------------------------------------------------
    def new_scene(self):
        img, _, qs = next(self.stream)
        enc = self.proc.image_processor(img, return_tensors="pt")
        with torch.no_grad():
            hs = self.model.model.vision_tower(enc["pixel_values"][0], output_hidden_states=True).hidden_states
        feats = hs[self.model.config.vision_feature_layer][:, 1:].to(torch.bfloat16)
        h, w = img.height, img.width
        n = self.proc._get_number_of_features(h, w, TILE, TILE) - 1  # the processor counts CLS; `default` drops it
        rec = {"feats": feats, "size": (h, w), "tokens": n, "qs": qs}
        if len(self.pool) < 2:
            self.check(img, rec)
        self.pool.append(rec)
        return rec

    def check(self, img, rec):
        """The cached path must build what LlavaNextProcessor + the model build from the image."""
        msgs = conversation(pick_turns(self.rng, rec["qs"], 3))
        ids = self.ids(msgs, rec["tokens"])
        ref = self.proc(images=img, text=self.tok.apply_chat_template(msgs, tokenize=False), return_tensors="pt")
        assert torch.equal(ids, ref["input_ids"][0]), "prompt ids differ from the processor's"
        with torch.no_grad():
            mine = self.image_rows(rec, full=True).float()
            theirs = torch.cat(self.model.model.get_image_features(ref["pixel_values"], ref["image_sizes"],
                                                                   return_dict=True).pooler_output)
        err = (mine - theirs).abs().max().item() / theirs.abs().max().item()
        assert err < 2e-2, f"cached image rows differ from the model's by {err}"  # bfloat16 cache

    def ids(self, msgs, image_tokens):
        text = self.tok.apply_chat_template(msgs, tokenize=False)
        text = text.replace("<image>", "<image>" * image_tokens, 1)
        return torch.tensor(self.tok(text, add_special_tokens=False)["input_ids"])

    def labels(self, ids):
        labels = torch.full_like(ids, -100)
        seq, a = ids.tolist(), self.assistant
        i = 0
        while i < len(seq):
            if seq[i:i + len(a)] == a:
                j = i + len(a)
                while j < len(seq) and seq[j] != self.end_id:
                    labels[j] = seq[j]; j += 1
                if j < len(seq):
                    labels[j] = self.end_id
                i = j
            i += 1
        return labels

    def image_rows(self, rec, full):
        core = self.model.model
        feats = rec["feats"].float() if full else rec["feats"][:1].float()
        if self.mu is not None:
            feats = (feats - self.mu) / self.sigma
        proj = core.multi_modal_projector(feats)
        if not full:
            return proj[0]
        packed, _ = core.pack_image_features([proj], torch.tensor([rec["size"]]), "default", core.image_newline)
        return packed[0]

    def loss(self, recs, full, turns):
        core, total, count = self.model.model, 0.0, 0
        batch = []
        for rec in recs:
            msgs = conversation(pick_turns(self.rng, rec["qs"], turns))
            ids = self.ids(msgs, rec["tokens"] if full else 256)
            batch.append((rec, ids, self.labels(ids)))
        longest = max(len(b[1]) for b in batch)
        embeds, labels, mask = [], [], []
        for rec, ids, lab in batch:
            e = core.language_model.embed_tokens(ids)
            e = e.masked_scatter((ids == self.image_id)[:, None], self.image_rows(rec, full).to(e.dtype))
            pad = longest - len(ids)
            embeds.append(torch.cat([e, torch.zeros(pad, e.shape[1])]))
            labels.append(torch.cat([lab, torch.full((pad,), -100)]))
            mask.append(torch.cat([torch.ones(len(ids)), torch.zeros(pad)]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.model(inputs_embeds=torch.stack(embeds), attention_mask=torch.stack(mask).long(),
                             labels=torch.stack(labels))
        return out.loss

    # --- training ---------------------------------------------------------------------------
    def add_lora(self, rank, alpha):
        for i, layer in enumerate(self.model.model.language_model.layers):
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                wrapped = LoRA(getattr(layer.self_attn, name), rank, alpha)
                setattr(layer.self_attn, name, wrapped)
                self.lora[f"model.language_model.layers.{i}.self_attn.{name}.weight"] = wrapped

    def stage(self, name, minutes, full, batch, lr, params, history):
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            g.setdefault("base_lr", lr)
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
        params = [p for g in groups for p in g["params"]]
        start, step, ema = time.time(), 0, None
        budget = minutes * 60
        while time.time() - start < budget:
            progress = (time.time() - start) / budget
            scale = min(1.0, progress / 0.05) * 0.5 * (1 + math.cos(math.pi * progress))
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * max(scale, 0.02)
            recs = [self.new_scene()] if len(self.pool) < self.args.scenes else [self.pool[self.rng.integers(len(self.pool))]]
            while len(recs) < batch:
                recs.append(self.pool[self.rng.integers(len(self.pool))])
            loss = self.loss(recs, full, self.args.turns)
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
            if step % 20 == 0:
                history.append({"stage": name, "step": step, "seconds": round(time.time() - start, 1),
                                "loss_ema": round(ema, 4), "scenes": len(self.pool)})
                self.log(f"{name} step {step} {time.time() - start:.0f}s loss {ema:.4f} pool {len(self.pool)}")
        return {"steps": step, "seconds": round(time.time() - start, 1), "final_loss_ema": round(ema, 4)}

    def probe(self, limit):
        rows = [json.loads(l) for l in open(os.path.join(self.args.eval, "questions.jsonl"))][:limit]
        correct, total = {}, {}
        self.model.eval()
        with torch.no_grad():
            for r in rows:
                text = self.tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}],
                                                    tokenize=False, add_generation_prompt=True)
                enc = self.proc(images=Image.open(os.path.join(self.args.eval, r["image"])), text=text, return_tensors="pt")
                out = self.model.generate(**enc, max_new_tokens=4, do_sample=False)
                answer = self.tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
                total[r["kind"]] = total.get(r["kind"], 0) + 1
                correct[r["kind"]] = correct.get(r["kind"], 0) + (answer == r["answer"])
        self.model.train()
        acc = {k: round(correct[k] / total[k], 3) for k in sorted(total)}
        acc["all"] = round(sum(correct.values()) / sum(total.values()), 3)
        return acc

    def standardise(self, scenes):
        """DINOv2's hidden state −2 has channel means up to 2 against a median spread of 0.3: the
        common offset dominates the projector's first gradients. Train on standardised features;
        save() folds the affine map into linear_1, so the saved checkpoint is a plain LLaVA-NeXT."""
        feats = torch.cat([self.new_scene()["feats"].float().flatten(0, 1) for _ in range(scenes)])
        self.mu, self.sigma = feats.mean(0), feats.std(0).clamp_min(1e-3)
        self.log(f"standardised features over {scenes} scenes: channel std {self.sigma.min():.2f}–{self.sigma.max():.2f}")

    def save(self, path):
        core = self.model.model
        out = {"model.image_newline": core.image_newline.detach().clone()}
        for k, v in core.multi_modal_projector.state_dict().items():
            out["model.multi_modal_projector." + k] = v.detach().clone()
        if self.mu is not None:  # W((x − μ)/σ) + b = (W/σ)x + (b − W(μ/σ))
            w, b = out["model.multi_modal_projector.linear_1.weight"], out["model.multi_modal_projector.linear_1.bias"]
            out["model.multi_modal_projector.linear_1.bias"] = b - w @ (self.mu / self.sigma)
            out["model.multi_modal_projector.linear_1.weight"] = (w / self.sigma).contiguous()
        for target, m in self.lora.items():
            out[f"lora.{target}.A"] = m.A.detach().to(torch.float16).contiguous()
            out[f"lora.{target}.B"] = (m.B.detach() * m.scale).to(torch.float16).contiguous()
        save_file(out, path, metadata={"format": "pt"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="the folder assemble.py made without --trained")
    ap.add_argument("--out", required=True)
    ap.add_argument("--eval", default="data/eval")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenes", type=int, default=1500, help="pool size; fresh scenes until it is full")
    ap.add_argument("--turns", type=int, default=8, help="question/answer turns packed per scene")
    ap.add_argument("--base-minutes", type=float, default=25)
    ap.add_argument("--full-minutes", type=float, default=25)
    ap.add_argument("--lora-minutes", type=float, default=45)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--probe", type=int, default=150, help="held-out questions asked after stage B")
    ap.add_argument("--force-lora", action="store_true")
    ap.add_argument("--lora-first", action="store_true",
                    help="LoRA from the first step, trained with the projector in stages A and B; no stage C")
    ap.add_argument("--standardise", type=int, default=0, metavar="N",
                    help="standardise the features per channel over N scenes (folded into linear_1 at save)")
    ap.add_argument("--lora-lr", type=float, default=4e-4, help="LoRA's learning rate in stage A (half in B), with --lora-first")
    ap.add_argument("--batch", type=int, default=4, help="scenes per step in stage A")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "w")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True); logf.write(line + "\n"); logf.flush()

    t0 = time.time()
    tr = Trainer(args, log)
    core = tr.model.model
    projector = list(core.multi_modal_projector.parameters()) + [core.image_newline]
    for p in projector:
        p.requires_grad_(True)
    record = {"command": " ".join(sys.argv), "seed": args.seed, "torch": torch.__version__, "stages": {}, "history": []}
    if args.standardise:
        tr.standardise(args.standardise)
    if args.lora_first:
        tr.add_lora(args.lora_rank, 2 * args.lora_rank)
        lora = [p for m in tr.lora.values() for p in (m.A, m.B)]
        record["lora"] = {"rank": args.lora_rank, "alpha": 2 * args.lora_rank, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}
        log(f"stage A: LoRA rank {args.lora_rank} + projector, base view, {args.base_minutes} min")
        record["stages"]["A"] = tr.stage("A", args.base_minutes, False, args.batch, 1e-3,
                                           [{"params": projector[:-1]}, {"params": lora, "base_lr": args.lora_lr}], record["history"])
        log(f"stage B: LoRA + projector + newline, full anyres, {args.full_minutes} min")
        record["stages"]["B"] = tr.stage("B", args.full_minutes, True, 1, 5e-4,
                                           [{"params": projector}, {"params": lora, "base_lr": args.lora_lr / 2}], record["history"])
        tr.save(os.path.join(args.out, "trained.safetensors"))
        if args.probe:
            record["probe_after_B"] = tr.probe(args.probe)
            log(f"probe after B ({args.probe} held-out questions): {record['probe_after_B']}")
        record["wall_minutes"] = round((time.time() - t0) / 60, 1)
        record["pool_scenes"] = len(tr.pool)
        json.dump(record, open(os.path.join(args.out, "training.json"), "w"), indent=1)
        log(f"done in {record['wall_minutes']} min")
        return
    log(f"stage A: projector only, base view, {args.base_minutes} min")
    record["stages"]["A"] = tr.stage("A", args.base_minutes, False, args.batch, 1e-3, projector[:-1], record["history"])
    log(f"stage B: projector only, full anyres, {args.full_minutes} min")
    record["stages"]["B"] = tr.stage("B", args.full_minutes, True, 1, 5e-4, projector, record["history"])
    tr.save(os.path.join(args.out, "trained_projector_only.safetensors"))
    acc = tr.probe(args.probe)
    record["probe_after_B"] = acc
    log(f"probe after B ({args.probe} held-out questions): {acc}")
    if args.force_lora or acc["all"] < BAR or min(v for k, v in acc.items() if k != "all") < KIND_BAR:
        log(f"stage C: LoRA rank {args.lora_rank} (q, k, v, o) + projector, full anyres, {args.lora_minutes} min")
        tr.add_lora(args.lora_rank, 2 * args.lora_rank)
        lora = [p for m in tr.lora.values() for p in (m.A, m.B)]
        opt_params = lora + projector
        record["stages"]["C"] = tr.stage("C", args.lora_minutes, True, 1, 5e-4, opt_params, record["history"])
        record["lora"] = {"rank": args.lora_rank, "alpha": 2 * args.lora_rank, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    tr.save(os.path.join(args.out, "trained.safetensors"))
    record["wall_minutes"] = round((time.time() - t0) / 60, 1)
    record["pool_scenes"] = len(tr.pool)
    json.dump(record, open(os.path.join(args.out, "training.json"), "w"), indent=1)
    log(f"done in {record['wall_minutes']} min")


if __name__ == "__main__":
    main()
