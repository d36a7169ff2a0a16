#!/usr/bin/env python3
"""Held-out accuracy of a LLaVA-NeXT folder on data/eval, as transformers answers (greedy, at most
4 new tokens, exact match after stripping), per question kind, with the answer distribution.

    python3 scripts/realparts/evaluate.py --model .cache/models/fovea-dino-smol --out accuracy.json
"""
import argparse
import collections
import json
import os
import time

import torch
from PIL import Image
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--eval", default="data/eval")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = LlavaNextForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    proc = LlavaNextProcessor.from_pretrained(args.model)
    tok = proc.tokenizer
    rows = [json.loads(l) for l in open(os.path.join(args.eval, "questions.jsonl"))][:args.limit]
    correct, total, said, start = collections.Counter(), collections.Counter(), collections.defaultdict(collections.Counter), time.time()
    with torch.no_grad():
        for i, r in enumerate(rows):
            text = tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}], tokenize=False,
                                           add_generation_prompt=True)
            enc = proc(images=Image.open(os.path.join(args.eval, r["image"])), text=text, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=4, do_sample=False)
            answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
            total[r["kind"]] += 1
            correct[r["kind"]] += answer == r["answer"]
            said[r["kind"]][answer] += 1
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(rows)}: {sum(correct.values()) / (i + 1):.3f} ({time.time() - start:.0f} s)", flush=True)
    acc = {k: round(correct[k] / total[k], 3) for k in sorted(total)}
    acc["all"] = round(sum(correct.values()) / sum(total.values()), 3)
    result = {"questions": len(rows), "accuracy": acc,
              "most_common_answers": {k: said[k].most_common(4) for k in sorted(said)},
              "seconds": round(time.time() - start)}
    print(json.dumps(result, indent=1))
    if args.out:
        json.dump(result, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
