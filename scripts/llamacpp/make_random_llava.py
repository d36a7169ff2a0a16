#!/usr/bin/env python3
"""A random-weight LLaVA checkpoint in Hugging Face format with a published model's shapes, for
speed comparisons where the real weights cannot be downloaded (timings do not depend on the values).

  tinyllava        LLaVA-1.5: CLIP ViT-L/14-336 (24 layers, 1024 wide) + TinyLlama-1.1B
                   (22 layers, 2048 wide, 32 heads / 4 KV heads, MLP 5632), 576 visual tokens
  llava-next-7b    LLaVA-1.6: CLIP ViT-L/14-336 + Vicuna-7B (32 layers, 4096 wide), anyres 2×2

The tokenizer is SmolLM2's byte-level BPE (from the fovea-dino-smol set-up) cut to the first
32,000 ids, with `<image>` at 32000 as llava-hf's checkpoints have it; vocabulary 32,064.

    python3 scripts/llamacpp/make_random_llava.py --shape tinyllava --out .cache/sbs/tinyllava
"""
import argparse
import json
import os

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaNextConfig, LlavaNextForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP_L_336 = dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                  num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
SHAPES = {
    "tinyllava": (LlavaConfig, LlavaForConditionalGeneration, dict(
        text_config=dict(model_type="llama", hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, vocab_size=32064, max_position_embeddings=4096,
                         rms_norm_eps=1e-5))),
    "llava-next-7b": (LlavaNextConfig, LlavaNextForConditionalGeneration, dict(
        text_config=dict(model_type="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32, vocab_size=32064, max_position_embeddings=4096,
                         rms_norm_eps=1e-5),
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]])),
}
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}{% if message['content'] is string %}"
          "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>\\n' }}"
          "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def write_tokenizer(out: str, keep: int = 32000, vocab_size: int = 32064) -> None:
    with open(os.path.join(ROOT, ".cache/models/fovea-dino-smol/tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = {t: i for t, i in tok["model"]["vocab"].items() if i < keep}
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    extra = ["<image>"] + [f"<extra_{i}>" for i in range(vocab_size - keep - 1)]
    for i, t in enumerate(extra):
        vocab[t] = keep + i
    tok["model"]["vocab"] = vocab
    tok["model"]["merges"] = merges
    tok["added_tokens"] = [a for a in tok["added_tokens"] if a["id"] < keep] + [
        dict(id=keep + i, content=t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
        for i, t in enumerate(extra)]
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(dict(tokenizer_class="PreTrainedTokenizerFast", bos_token="<|im_start|>", eos_token="<|im_end|>",
                       pad_token="<extra_0>", image_token="<image>", chat_template=CHATML), f, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config_cls, model_cls, kw = SHAPES[args.shape]
    torch.manual_seed(args.seed)
    cfg = config_cls(vision_config=CLIP_L_336, image_token_index=32000, vision_feature_layer=-2,
                     vision_feature_select_strategy="default", **kw)
    cfg.text_config.bos_token_id, cfg.text_config.eos_token_id = 1, 2
    # Built in bfloat16 from the start: a 7B model in float32 would not fit beside its copy.
    torch.set_default_dtype(torch.bfloat16)
    model = model_cls(cfg)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)
    write_tokenizer(args.out)
    processor = dict(image_processor_type="LlavaNextImageProcessor" if args.shape == "llava-next-7b" else "CLIPImageProcessor",
                     size=dict(shortest_edge=336), crop_size=dict(height=336, width=336), resample=3,
                     image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711])
    if args.shape == "llava-next-7b":
        processor["image_grid_pinpoints"] = kw["image_grid_pinpoints"]
    with open(os.path.join(args.out, "preprocessor_config.json"), "w") as f:
        json.dump(processor, f, indent=2)
    print(args.out)


if __name__ == "__main__":
    main()
