#!/usr/bin/env python3
"""An independent reference for Fovea's k-quant and Q5 kernels: the test model as llama.cpp's
Q4_K_M file (Q4_K and Q6_K tensors, from llama-quantize, plus one Q5_0 and one Q5_1 matrix: the
types llama-quantize falls back to in a Q4_K_M file where rows are not a multiple of 256, as in
SmolLM2's) answered by transformers on the same weights.

    bash scripts/llamacpp/build.sh                 # llama-quantize
    python3 scripts/llamacpp/kquant_reference.py

1. `llama-quantize --tensor-type blk.0.ffn_up=q5_0 --tensor-type blk.1.ffn_up=q5_1
   fovea-test-llava-f16.gguf fovea-test-llava-q4_k_m.gguf Q4_K_M`.
2. transformers loads that file as a LlamaForCausalLM (`gguf_file=`: its loader dequantises with
   gguf-py's numpy code and undoes llama.cpp's Q/K row permutation). Those weights replace the
   language model of the safetensors checkpoint; the tower's and projector's matrices are rounded
   to f16, as the mmproj file holds them. The result is saved as a float32 folder and
   scripts/testmodel/reference.py records transformers' logits and greedy answers on it.
3. `kquant-values.safetensors`: gguf-py's dequantised values of the first rows of a Q4_K, a Q6_K,
   the Q5_0 and the Q5_1 tensor, for the kernels' dequantisation test.
Nothing here is in Fovea's inference path; the two outputs are committed beside the GGUF files.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file
from transformers import LlamaForCausalLM, LlavaNextForConditionalGeneration

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models/fovea-test-llava"))
    ap.add_argument("--bin", default=os.path.join(ROOT, ".cache/llama.cpp/build-native/bin"))
    args = ap.parse_args()
    files = os.path.join(args.model, "llama.cpp")
    f16, q4km = os.path.join(files, "fovea-test-llava-f16.gguf"), os.path.join(files, "fovea-test-llava-q4_k_m.gguf")
    env = dict(os.environ, LD_LIBRARY_PATH=args.bin)
    subprocess.run([os.path.join(args.bin, "llama-quantize"), "--tensor-type", "blk.0.ffn_up=q5_0",
                    "--tensor-type", "blk.1.ffn_up=q5_1", f16, q4km, "Q4_K_M"], check=True, env=env,
                   stdout=subprocess.DEVNULL)

    reader = GGUFReader(q4km)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert {"Q4_K", "Q6_K", "Q5_0", "Q5_1"} <= set(types.values()), types
    values = {}
    for t in reader.tensors:
        if t.name in ("blk.0.attn_output.weight", "blk.1.ffn_down.weight", "blk.0.ffn_up.weight", "blk.1.ffn_up.weight"):
            full = dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0]))
            values[t.name] = np.ascontiguousarray(full[:8].astype(np.float32))
    save_file(values, os.path.join(files, "kquant-values.safetensors"))

    llava = LlavaNextForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32)
    text = LlamaForCausalLM.from_pretrained(files, gguf_file=os.path.basename(q4km), dtype=torch.float32)
    state = text.model.state_dict()
    llava.model.language_model.load_state_dict(state, strict=True)
    llava.lm_head.weight.data.copy_(text.lm_head.weight.data)
    with torch.no_grad():
        for name, p in llava.model.named_parameters():
            if (name.startswith("vision_tower.") or name.startswith("multi_modal_projector.")) and p.dim() >= 2:
                p.copy_(p.half().float())
    with tempfile.TemporaryDirectory() as tmp:
        llava.save_pretrained(tmp)
        for f in os.listdir(args.model):
            if f.endswith(".json") or f.endswith(".jinja"):
                if f not in ("config.json",) and not os.path.exists(os.path.join(tmp, f)):
                    shutil.copy(os.path.join(args.model, f), tmp)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/testmodel/reference.py"), "--model", tmp,
                        "--out", os.path.join(files, "reference-q4_k_m.safetensors")], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
