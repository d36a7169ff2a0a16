#!/usr/bin/env python3
"""Seeds for the fuzzers: Tests/Corpus/fuzz/<target>/seed-* — small valid inputs of each kind plus the
malformed corpus's files of that kind. Crashes the fuzzers find are saved beside them as crash-* and
replayed by the tests (FuzzRegressionTests). Standard library only.

    python3 scripts/corpus/make_fuzz_seeds.py
"""
import base64
import glob
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/Corpus/fuzz")
MAL = os.path.join(ROOT, "Tests/Corpus/malformed")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(target, pattern):
    for p in sorted(glob.glob(os.path.join(MAL, pattern))):
        put(target, os.path.basename(p), open(p, "rb").read())


def main():
    # Seeds only: the crash-/leak-/timeout- inputs beside them are regressions kept for good.
    for old in glob.glob(os.path.join(OUT, "*", "seed-*")):
        os.remove(old)
    # safetensors: a valid file of three dtypes, and the malformed ones.
    hdr = json.dumps({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                      "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
                      "n": {"dtype": "I64", "shape": [1, 2], "data_offsets": [22, 38]}, "__metadata__": {"format": "pt"}}).encode()
    put("safetensors", "valid.safetensors", struct.pack("<Q", len(hdr)) + hdr + struct.pack("<4f", 1, 2, 3, 4) + b"\x80\x3f" * 3 + struct.pack("<2q", 336, 672))
    copy("safetensors", "st-*")
    copy("safetensors", "pixels-*")
    copy("gguf", "gguf-*")
    for p in sorted(glob.glob(os.path.join(ROOT, "Fixtures/models/*/config.json"))) + sorted(glob.glob(os.path.join(ROOT, "models/*/config.json"))):
        put("config", p.split("/")[-2] + ".json", open(p, "rb").read())
    copy("config", "config-*")
    for p in sorted(glob.glob(os.path.join(ROOT, "models/*/processor_config.json"))):
        put("preprocessor", p.split("/")[-2] + ".json", json.dumps(json.load(open(p))["image_processor"]))
    put("preprocessor", "clip.json", json.dumps({"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 28},
                                                 "crop_size": {"height": 28, "width": 28}}))
    for p in sorted(glob.glob(os.path.join(MAL, "processor-*"))):
        try:
            put("preprocessor", os.path.basename(p), json.dumps(json.load(open(p))["image_processor"]))
        except (ValueError, KeyError):
            put("preprocessor", os.path.basename(p), open(p, "rb").read())
    put("tokenizer-json", "fovea-test-llava-small.json", open(os.path.join(ROOT, "models/fovea-test-llava-small/tokenizer.json"), "rb").read())
    put("tokenizer-json", "llama-style.json", open(os.path.join(ROOT, "Fixtures/tokenizers/llama-style/tokenizer.json"), "rb").read())
    for i, text in enumerate(["What colour is the square?", "<image>\nHow many?", "naïve café 東京 🙂", "\x00\x01\xff", "1234567890" * 5, "   \n\t "]):
        put("tokenize", f"text{i}", text.encode("utf-8", "surrogatepass"))
    for p in sorted(glob.glob(os.path.join(ROOT, "Fixtures/images/*.png")) + glob.glob(os.path.join(ROOT, "Fixtures/images/*.jpg"))):
        put("image", os.path.basename(p), open(p, "rb").read())
    copy("image", "image-*")
    put("chat", "two-turns", b"\x01What is it?\x00\x02A cat.\x00\x05And this?")
    put("chat", "system", b"\x00Be brief.\x00\x01<image>\nHi")
    grid = open(os.path.join(ROOT, "docs/results/fovea-dino-smol/grid.txt")).read().splitlines()
    for i, line in enumerate(l for l in grid if l and not l.startswith("#")):
        for j, part in enumerate(line.split(" ")):
            put("spec", f"grid{i}-{j}", part.split("=", 1)[1] if "=" in part and part.startswith(("prune", "kv")) else part)
        put("spec", f"cell{i}", line)
    # Bodies for POST /v1/chat/completions: text, parts with a data-URI image, the fovea object.
    png = base64.b64encode(open(os.path.join(ROOT, "Fixtures/images/palette.png"), "rb").read()).decode()
    bodies = {
        "text": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        "image": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}},
                                                            {"type": "text", "text": "What is it?"}]}], "stream": True,
                  "stream_options": {"include_usage": True}},
        "fovea": {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                  "fovea": {"prune": "hired:r=0.2", "kv": "avl:s=0.5", "kv_dtype": "q8_0"}, "stop": ["\n", "END"], "seed": 3},
        "bad-fovea": {"messages": [{"role": "user", "content": "Hi"}], "fovea": {"prune": 7, "kv": "nope:x=1"}},
        "urls": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "file:///etc/passwd"},
                                                           {"type": "image_url", "image_url": {"url": "data:image/png,xyz"}}]}]},
    }
    for name, body in bodies.items():
        put("chat-request", name, json.dumps(body))
    put("chat-request", "truncated", json.dumps(bodies["image"])[:300])
    print("seeds:", {t: len(os.listdir(os.path.join(OUT, t))) for t in sorted(os.listdir(OUT))})


if __name__ == "__main__":
    main()
