#!/usr/bin/env python3
"""Python-side check of a committed test model (not run in CI: it needs torch and transformers).

    python3 scripts/testmodel/test_reference.py [--model models/fovea-test-llava-small]

Reloads the folder with transformers exactly as a user would (from_pretrained, the saved
processor) and checks that it reproduces the committed reference.safetensors — the same prompt
ids, last-position logits within 1e-5 relative, the same greedy answers — and that the model file
stays within its size budget. Exits non-zero on the first mismatch.
"""
import argparse
import json
import os
import sys

import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

BUDGET = {"fovea-test-llava": 25_000_000, "fovea-test-llava-small": 3_000_000}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fovea-test-llava-small")
    ap.add_argument("--eval", default="data/eval")
    args = ap.parse_args()
    name = os.path.basename(os.path.normpath(args.model))
    size = os.path.getsize(os.path.join(args.model, "model.safetensors"))
    assert size <= BUDGET.get(name, 25_000_000), f"{name}: model.safetensors is {size} bytes"
    ref = load_file(os.path.join(args.model, "reference.safetensors"))
    model = LlavaNextForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    proc = LlavaNextProcessor.from_pretrained(args.model)
    tok = proc.tokenizer
    rows = [json.loads(line) for line in open(os.path.join(args.eval, "questions.jsonl"))]
    count = sum(k.startswith("answer_") for k in ref)
    assert count >= 50, f"reference holds {count} questions, expected 50"
    worst = 0.0
    with torch.no_grad():
        for i in range(count):
            r = rows[i]
            text = tok.apply_chat_template([{"role": "user", "content": "<image>\n" + r["question"]}], tokenize=False,
                                           add_generation_prompt=True)
            enc = proc(images=Image.open(os.path.join(args.eval, r["image"])), text=text, return_tensors="pt")
            assert torch.equal(enc["input_ids"][0], ref[f"input_ids_{i}"]), f"question {i}: prompt ids"
            logits = model(**enc).logits[0, -1]
            want = ref[f"logits_{i}"]
            err = ((logits - want).abs().max() / want.abs().max()).item()
            worst = max(worst, err)
            assert err <= 1e-5, f"question {i}: logits relative error {err}"
            out = model.generate(**enc, max_new_tokens=6, do_sample=False, eos_token_id=tok.eos_token_id)
            answer = out[0, enc["input_ids"].shape[1]:].tolist()
            assert answer == ref[f"answer_{i}"].tolist(), f"question {i}: answer {answer}"
    print(f"{name}: {count} reference questions reproduced (worst logits relative error {worst:.1e}), {size} bytes")


if __name__ == "__main__":
    sys.exit(main())
