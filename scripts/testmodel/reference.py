#!/usr/bin/env python3
"""transformers' greedy answers and last-position logits for the first 50 held-out questions,
for Fovea's tests to compare against.

    python3 scripts/testmodel/reference.py --model models/fovea-test-llava
    python3 scripts/testmodel/reference.py --model .cache/models/fovea-dino-smol \
        --out models/fovea-dino-smol/reference.safetensors --full 3

Writes <model>/reference.safetensors (or --out): input_ids_i (prompt with the image token
expanded, int64), logits_i (last prompt position; with --full N only for i < N, and for the rest
top_ids_i / top_logits_i, the 64 largest — a 49k-entry vocabulary would make the file 10 MB),
answer_i (greedy tokens up to <|im_end|>, at most 6), for i < 50.
"""
import argparse
import json
import os

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fovea-test-llava")
    ap.add_argument("--eval", default="data/eval")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--out", help="default: <model>/reference.safetensors")
    ap.add_argument("--full", type=int, default=None, help="full logits for the first N questions only")
    args = ap.parse_args()
    model = LlavaNextForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    proc = LlavaNextProcessor.from_pretrained(args.model)
    tok = proc.tokenizer
    rows = [json.loads(l) for l in open(os.path.join(args.eval, "questions.jsonl"))][:args.count]
    out, correct = {}, 0
    with torch.no_grad():
        for i, r in enumerate(rows):
            text = tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}], tokenize=False,
                                           add_generation_prompt=True)
            enc = proc(images=Image.open(os.path.join(args.eval, r["image"])), text=text, return_tensors="pt")
            res = model(**enc, use_cache=True)
            logits = res.logits[0, -1]
            answer = []
            t = int(logits.argmax())
            past = res.past_key_values
            while len(answer) < 6:
                answer.append(t)
                if t == tok.eos_token_id:
                    break
                step = model(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
                past, t = step.past_key_values, int(step.logits[0, -1].argmax())
            out[f"input_ids_{i}"] = enc["input_ids"][0].clone()
            if args.full is None or i < args.full:
                out[f"logits_{i}"] = logits.contiguous()
            else:
                top = torch.topk(logits, 64)
                out[f"top_ids_{i}"], out[f"top_logits_{i}"] = top.indices.contiguous(), top.values.contiguous()
            out[f"answer_{i}"] = torch.tensor(answer)
            correct += tok.decode(answer, skip_special_tokens=True).strip() == r["answer"]
    save_file(out, args.out or os.path.join(args.model, "reference.safetensors"))
    print(f"{len(rows)} questions, {correct} answered correctly by transformers")


if __name__ == "__main__":
    main()
