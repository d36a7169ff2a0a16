#!/usr/bin/env python3
"""The PyTorch + transformers figure beside `fovea bench --shape tinyllava`: same TinyLLaVA shapes, random
float32 weights, 2 threads, same prompt length (576 image + 40 text tokens), medians.

    python3 scripts/bench_torch.py [--runs 3] [--decode 32] [--autocast-bf16]

--autocast-bf16 runs everything under `torch.autocast("cpu", dtype=torch.bfloat16)`: PyTorch's
bf16 arithmetic (oneDNN, AVX-512 BF16 where the CPU has it), the figure beside
`fovea bench --shape tinyllava --weights bf16`.
"""
import contextlib
import argparse
import statistics
import time

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--smollm2", help="folder holding SmolLM2-135M-Instruct.Q4_1.gguf: bench that instead")
    ap.add_argument("--autocast-bf16", action="store_true", help="run under CPU bfloat16 autocast")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.smollm2:
        return smollm2(args)
    cfg = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                           num_attention_heads=16, image_size=336, patch_size=14),
        text_config=dict(model_type="llama", hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
        image_token_index=31999, vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(cfg).eval().float()
    pixels = torch.randn(1, 3, 336, 336)
    ids = torch.tensor([[1] + [100] * 5 + [31999] * 576 + list(range(200, 234))])
    vis, pre, dec = [], [], []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.autocast_bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for r in range(args.runs + 1):
            t = time.perf_counter()
            feats = model.model.get_image_features(pixel_values=pixels)
            feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
            feats = torch.cat(list(feats), 0) if isinstance(feats, (list, tuple)) else feats
            v = time.perf_counter() - t
            emb = model.get_input_embeddings()(ids)
            mask = ids == 31999
            emb[mask] = feats.reshape(-1, emb.shape[-1]).to(emb.dtype)
            t = time.perf_counter()
            out = model.model.language_model(inputs_embeds=emb, use_cache=True)
            logits = model.lm_head(out.last_hidden_state[:, -1:])
            p = time.perf_counter() - t
            past = out.past_key_values
            tok = logits.argmax(-1)
            t = time.perf_counter()
            for _ in range(args.decode):
                out = model.model.language_model(input_ids=tok, past_key_values=past, use_cache=True)
                past = out.past_key_values
                tok = model.lm_head(out.last_hidden_state[:, -1:]).argmax(-1)
            d = (time.perf_counter() - t) / args.decode
            print(f"run {r}{' (warm-up)' if r == 0 else ''}: vision {v:.3f} s, prefill {p:.3f} s ({ids.shape[1]} tokens), decode {d * 1000:.1f} ms/token")
            if r:
                vis.append(v), pre.append(p), dec.append(d)
    print(f"median: vision {statistics.median(vis):.3f} s, prefill {statistics.median(pre):.3f} s, "
          f"decode {statistics.median(dec) * 1000:.1f} ms/token (torch {torch.__version__}, sdpa"
          f"{', bf16 autocast' if args.autocast_bf16 else ''})")


def smollm2(args):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(args.smollm2, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                                 dtype=torch.float32).eval()
    p128, p512, dec = [], [], []
    with torch.inference_mode():
        model(input_ids=torch.arange(100, 164)[None])
        for _ in range(args.runs):
            for n, acc in [(128, p128), (512, p512)]:
                ids = (torch.arange(n) % 1000 + 100)[None]
                t = time.perf_counter()
                model(input_ids=ids, use_cache=True)
                acc.append(time.perf_counter() - t)
            out = model(input_ids=torch.tensor([[1, 9690, 198]]), use_cache=True)
            past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            t = time.perf_counter()
            for _ in range(128):
                out = model(input_ids=tok, past_key_values=past, use_cache=True)
                past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            dec.append((time.perf_counter() - t) / 128)
    m = statistics.median
    print(f"PyTorch SmolLM2 f32: prefill 128: {128 / m(p128):.0f} tok/s, prefill 512: {512 / m(p512):.0f} tok/s, "
          f"decode: {m(dec) * 1000:.1f} ms/token ({1 / m(dec):.0f} tok/s)")


if __name__ == "__main__":
    main()
