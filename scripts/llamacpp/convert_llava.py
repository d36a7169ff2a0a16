#!/usr/bin/env python3
"""Converts a Hugging Face LLaVA / LLaVA-NeXT checkpoint into llama.cpp's two GGUF files,
with llama.cpp's own converters from the PyPI sdist (scripts/llamacpp/source.sh):

  * the language model: its tensors renamed into a plain LlamaForCausalLM folder and converted
    by convert_hf_to_gguf.py;
  * the vision tower and projector ("mmproj"): split off by tools/mtmd/legacy-models/
    llava_surgery_v2.py and converted by convert_image_encoder_to_gguf.py, as
    docs/multimodal/llava.md describes for LLaVA-1.6.

The glue (what llama.cpp's documentation leaves to the user for transformers-format checkpoints):
  * transformers >= 5 saves the tower as `vision_tower.*`; the surgery script keeps such names,
    while CLIPVisionModel wants `vision_model.*`, so the extracted tower is renamed;
  * the vision config.json the encoder converter reads is written from the checkpoint's
    vision_config plus the LLaVA-NeXT keys it looks for (image_grid_pinpoints,
    mm_patch_merge_type, vision_feature_layer), the role of the hand-made config_vit.json
    in llama.cpp's guide; image mean and std come from the checkpoint's processor config;
  * transformers 5 moved CLIPVisionModel's transformer from `.vision_model` to the model itself;
    a shim restores the old attribute for the legacy encoder converter;
  * convert_hf_to_gguf.py refuses BPE tokenizers whose pre-tokenizer hash it does not list;
    a tokenizer.json whose pre-tokenizer is plain ByteLevel (GPT-2's regex) is declared "gpt-2",
    one that splits digits first and then applies ByteLevel (SmolLM2's) "smollm".

Usage (tooling; needs torch and transformers, which Fovea itself never does):
  python3 scripts/llamacpp/convert_llava.py --model models/fovea-test-llava --out DIR [--outtype f16]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def llama_cpp_source() -> str:
    return subprocess.check_output(["bash", os.path.join(HERE, "source.sh")], text=True).strip().splitlines()[-1]


def export_language_model(model_dir: str, out: str) -> dict:
    """The LLM as a LlamaForCausalLM folder: the checkpoint's language-model tensors renamed, in
    their stored dtype, one at a time (a 7B checkpoint never needs two copies in memory), with
    its text config, tokenizer and chat template."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    text = dict(cfg["text_config"])
    text["architectures"] = ["LlamaForCausalLM"]
    text["model_type"] = text.get("model_type", "llama")
    text["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings", False) or text.get("tie_word_embeddings", False))
    renames = [("language_model.model.", "model."), ("model.language_model.", "model."),
               ("language_model.lm_head.", "lm_head."), ("lm_head.", "lm_head.")]
    os.makedirs(out, exist_ok=True)
    tensors = {}
    for name in sorted(os.listdir(model_dir)):
        if not (name.endswith(".safetensors") and name.startswith("model")):
            continue
        with safe_open(os.path.join(model_dir, name), framework="pt") as f:
            for key in f.keys():
                for old, new in renames:
                    if key.startswith(old):
                        tensors[new + key[len(old):]] = f.get_tensor(key)
                        break
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    del tensors
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(text, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                 "generation_config.json"):
        if os.path.exists(os.path.join(model_dir, name)):
            shutil.copy(os.path.join(model_dir, name), out)
    return cfg


def convert_language_model(src: str, llm_dir: str, outfile: str, outtype: str) -> None:
    sys.path.insert(0, os.path.join(src, "gguf-py"))
    sys.path.insert(0, src)
    import convert_hf_to_gguf as conv  # noqa: E402  (llama.cpp's converter, from the sdist)
    from conversion.base import TextModel  # noqa: E402

    original = TextModel.get_vocab_base_pre

    def vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            with open(os.path.join(llm_dir, "tokenizer.json"), encoding="utf-8") as f:
                pre = json.load(f).get("pre_tokenizer") or {}
            if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
                return "gpt-2"
            steps = [(p.get("type"), p.get("individual_digits")) for p in pre.get("pretokenizers", [])]
            if pre.get("type") == "Sequence" and steps == [("Digits", True), ("ByteLevel", None)]:
                return "smollm"  # SmolLM2's: single digits, then GPT-2's regex
            raise

    TextModel.get_vocab_base_pre = vocab_base_pre
    sys.argv = ["convert_hf_to_gguf.py", llm_dir, "--outfile", outfile, "--outtype", outtype]
    conv.main()


# transformers 5's CLIPVisionModel is the vision transformer itself (`embeddings`, `encoder`, …);
# the legacy converter was written for 4.x, where it sat under `.vision_model`. The shim puts it
# back under that name, so the script's layer surgery and tensor names work unchanged.
LEGACY_ENCODER_SHIM = """
import runpy, sys, torch, transformers
class _Wrapped(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.vision_model = inner
from transformers.models.clip import modeling_clip
_load = modeling_clip.CLIPVisionModel.from_pretrained.__func__
modeling_clip.CLIPVisionModel.from_pretrained = classmethod(lambda cls, *a, **k: _Wrapped(_load(cls, *a, **k)))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def convert_mmproj(src: str, model_dir: str, cfg: dict, work: str, out_dir: str, f32: bool) -> str:
    import torch
    from safetensors.torch import save_file

    legacy = os.path.join(src, "tools", "mtmd", "legacy-models")
    # The surgery script reads whole checkpoints into memory (twice): hand it only the vision
    # tower, projector and newline, which is all it extracts.
    from safetensors import safe_open

    copy = os.path.join(work, "llava")
    os.makedirs(copy)
    vision_parts = {}
    for name in sorted(os.listdir(model_dir)):
        if name.endswith(".safetensors") and name.startswith("model"):
            with safe_open(os.path.join(model_dir, name), framework="pt") as f:
                for key in f.keys():
                    if "language_model." not in key and not key.startswith("lm_head."):
                        vision_parts[key] = f.get_tensor(key)
    save_file(vision_parts, os.path.join(copy, "model.safetensors"), metadata={"format": "pt"})
    del vision_parts
    subprocess.run([sys.executable, os.path.join(legacy, "llava_surgery_v2.py"), "-C", "-m", copy], check=True,
                   stdout=subprocess.DEVNULL)

    vit = os.path.join(work, "vit")
    os.makedirs(vit)
    tower = torch.load(os.path.join(copy, "llava.clip"), weights_only=True)
    renamed = {}
    for k, v in tower.items():
        if k.startswith("vision_tower."):
            k = "vision_model." + k[len("vision_tower."):]
        renamed[k] = v.contiguous()
    save_file(renamed, os.path.join(vit, "model.safetensors"))
    shutil.copy(os.path.join(copy, "llava.projector"), vit)

    vision = dict(cfg["vision_config"])
    vision["architectures"] = ["CLIPVisionModel"]
    vision["model_type"] = "clip_vision_model"
    vision["vision_feature_layer"] = cfg.get("vision_feature_layer", -2)
    vision["dtype"] = vision["torch_dtype"] = "float32"   # the converter calls .numpy(), which has no bfloat16
    if cfg.get("model_type") == "llava_next":
        vision["image_grid_pinpoints"] = cfg["image_grid_pinpoints"]
        vision["mm_patch_merge_type"] = "spatial_unpad"
        vision["image_aspect_ratio"] = "anyres"
    with open(os.path.join(vit, "config.json"), "w") as f:
        json.dump(vision, f, indent=2)

    proc = {}
    for name in ("preprocessor_config.json", "processor_config.json"):
        p = os.path.join(model_dir, name)
        if os.path.exists(p):
            with open(p) as f:
                proc = json.load(f)
            proc = proc.get("image_processor", proc)
            break
    mean = proc.get("image_mean", [0.48145466, 0.4578275, 0.40821073])
    std = proc.get("image_std", [0.26862954, 0.26130258, 0.27577711])
    cmd = [sys.executable, "-c", LEGACY_ENCODER_SHIM, os.path.join(legacy, "convert_image_encoder_to_gguf.py"), "-m", vit,
           "--llava-projector", os.path.join(vit, "llava.projector"), "--output-dir", out_dir, "--clip-model-is-vision",
           "--image-mean", *map(str, mean), "--image-std", *map(str, std)]
    if f32:
        cmd.append("--use-f32")
    env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return os.path.join(out_dir, f"mmproj-model-{'f32' if f32 else 'f16'}.gguf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face llava / llava_next folder")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--name", default=None, help="file name stem (default: the folder's name)")
    ap.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16", "q8_0"], help="language model weights")
    ap.add_argument("--mmproj-f32", action="store_true", help="mmproj matrices in f32 (the patch embedding stays f16: ggml's convolution wants it)")
    args = ap.parse_args()

    src = llama_cpp_source()
    name = args.name or os.path.basename(os.path.normpath(args.model))
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        llm_dir = os.path.join(work, "llm")
        cfg = export_language_model(args.model, llm_dir)
        text_out = os.path.join(args.out, f"{name}-{args.outtype}.gguf")
        mm = convert_mmproj(src, args.model, cfg, work, work, args.mmproj_f32)
        mm_out = os.path.join(args.out, f"mmproj-{name}-{'f32' if args.mmproj_f32 else 'f16'}.gguf")
        shutil.move(mm, mm_out)
        convert_language_model(src, llm_dir, text_out, args.outtype)
    print(text_out)
    print(mm_out)


if __name__ == "__main__":
    main()
