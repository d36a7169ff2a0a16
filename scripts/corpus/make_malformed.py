#!/usr/bin/env python3
"""Writes Tests/Corpus/malformed/: small broken inputs of every kind Fovea reads, and cases.json,
which says how `fovea inspect` / `fovea generate` is run on each and which words its error must
contain. Deterministic; standard library only.

    python3 scripts/corpus/make_malformed.py

A case either names a file as the model (`model`), or overlays corpus files on a copy of the small
test model (`base` + `files`, file name in the model folder → corpus file). `{model}` and `{corpus}`
in `args` are replaced by the runner (Tests/FoveaRuntimeTests/MalformedCorpusTests.swift).
"""
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/Corpus/malformed")
BASE = "models/fovea-test-llava-small"
cases = []
os.makedirs(OUT, exist_ok=True)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return name


def case(name, command, expect, model=None, files=None, args=(), base=None):
    c = {"name": name, "command": command, "expect": expect, "args": list(args)}
    if model:
        c["model"] = model
    if files:
        c["files"] = files
        c["base"] = base or BASE
    elif base:
        c["base"] = base
    cases.append(c)


# ---------- safetensors (as the model's weights) ----------
def st(header, data=b"", length=None):
    h = header.encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def st_case(name, data, expect):
    case(name, "inspect", expect, files={"model.safetensors": write(name + ".safetensors", data)})


F = lambda n: b"\0" * (4 * n)
st_case("st-empty", b"", "truncated")
st_case("st-short-prefix", b"\x01\x02\x03\x04", "truncated")
st_case("st-header-past-end", st('{"a":1}', length=4096), "truncated")
st_case("st-header-absurd", struct.pack("<Q", 1 << 60) + b"{}", "header")
st_case("st-header-not-json", st("{not json"), "invalid JSON")
st_case("st-header-array", st("[1,2,3]"), "header")
st_case("st-unknown-dtype", st('{"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}', F(1)), "unknown dtype 'F7'")
st_case("st-span-past-end", st('{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}', F(2)), "past the data section")
st_case("st-size-mismatch", st('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', F(4)), "but data_offsets span 16")
st_case("st-overlap", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', F(3)), "overlap")
st_case("st-negative-dim", st('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', F(1)), "no valid shape")
st_case("st-overflow-shape", st('{"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,4]}}', F(1)), "overflows")
st_case("st-offsets-decreasing", st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', F(3)), "not an increasing pair")
st_case("st-shape-not-list", st('{"w":{"dtype":"F32","shape":"big","data_offsets":[0,4]}}', F(1)), "no valid shape")
st_case("st-no-offsets", st('{"w":{"dtype":"F32","shape":[1]}}', F(1)), "data_offsets")
st_case("st-missing-weights", st('{"unrelated":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', F(1)), "missing tensor")
st_case("st-wrong-shape", st('{"model.language_model.embed_tokens.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}', F(4)), "expected shape")

# ---------- GGUF (as the model file) ----------
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def gstr(s): b = s.encode(); return u64(len(b)) + b
def kv_str(k, v): return gstr(k) + u32(8) + gstr(v)
def kv_u32(k, v): return gstr(k) + u32(4) + u32(v)
def header(tensors, kvs, version=3): return b"GGUF" + u32(version) + u64(tensors) + u64(kvs)
def pad(b, a=32): return b + b"\0" * (-len(b) % a)
def tinfo(name, dims, typ, off): return gstr(name) + u32(len(dims)) + b"".join(u64(d) for d in dims) + u32(typ) + u64(off)


def gguf_case(name, data, expect, command="inspect", args=()):
    case(name, command, expect, model=write(name + ".gguf", data), args=args)


def llama_kvs(arch="llama", skip=()):
    kv = {"general.architecture": ("s", arch), "llama.block_count": ("u", 1), "llama.embedding_length": ("u", 8),
          "llama.feed_forward_length": ("u", 16), "llama.attention.head_count": ("u", 2), "llama.context_length": ("u", 64)}
    out = [kv_str(k, v) if t == "s" else kv_u32(k, v) for k, (t, v) in kv.items() if k not in skip]
    return out


def tiny_llama(arch="llama", skip_kv=(), skip_tensor=None, tokenizer="gpt2"):
    d, ff, vocab = 8, 16, 16
    tensors = [("token_embd.weight", [d, vocab]), ("output_norm.weight", [d])]
    tensors += [(f"blk.0.{n}.weight", [d]) for n in ("attn_norm", "ffn_norm")]
    tensors += [(f"blk.0.{n}.weight", [d, d]) for n in ("attn_q", "attn_k", "attn_v", "attn_output")]
    tensors += [("blk.0.ffn_gate.weight", [d, ff]), ("blk.0.ffn_up.weight", [d, ff]), ("blk.0.ffn_down.weight", [ff, d])]
    tensors = [t for t in tensors if t[0] != skip_tensor]
    kvs = llama_kvs(arch, skip_kv)
    toks = gstr("tokenizer.ggml.tokens") + u32(9) + u32(8) + u64(vocab) + b"".join(gstr(f"t{i}") for i in range(vocab))
    kvs += [kv_str("tokenizer.ggml.model", tokenizer), toks]
    body = header(len(tensors), len(kvs)) + b"".join(kvs)
    off, data = 0, b""
    for name, dims in tensors:
        n = 1
        for x in dims:
            n *= x
        body += tinfo(name, dims, 0, off)
        chunk = pad(struct.pack(f"<{n}f", *[((j * 7) % 11 - 5) / 20 for j in range(n)]))
        data += chunk
        off += len(chunk)
    return pad(body) + data


gguf_case("gguf-empty", b"", "truncated")
gguf_case("gguf-bad-magic", b"GGML" + u32(3) + u64(0) + u64(0), "not a GGUF file")
gguf_case("gguf-version-1", header(0, 0, version=1), "version 1 is not supported")
gguf_case("gguf-truncated-header", b"GGUF" + u32(3) + b"\1\0", "truncated")
gguf_case("gguf-absurd-tensor-count", header(1 << 40, 0), "exceed what the file can hold")
gguf_case("gguf-absurd-string", header(0, 1) + u64(1 << 50), "exceeds the")
gguf_case("gguf-unknown-value-type", header(0, 1) + gstr("k") + u32(99), "unknown value type 99")
gguf_case("gguf-array-too-long", header(0, 1) + gstr("k") + u32(9) + u32(4) + u64(1 << 40), "cannot fit in the file")
gguf_case("gguf-nested-arrays", header(0, 1) + gstr("k") + u32(9) + u32(9) + u64(1) + u32(9) + u64(1) + u32(9) + u64(1), "nested too deeply")
gguf_case("gguf-zero-dims", pad(header(1, 0) + tinfo("t", [], 0, 0)), "dimensions")
gguf_case("gguf-nine-dims", pad(header(1, 0) + tinfo("t", [1] * 9, 0, 0)), "dimensions")
gguf_case("gguf-absurd-dim", pad(header(1, 0) + tinfo("t", [1 << 40], 0, 0)), "is absurd")
gguf_case("gguf-unknown-type", pad(header(1, 0) + tinfo("t", [32], 77, 0)) + b"\0" * 128, "ggml type 77")
gguf_case("gguf-misaligned", pad(header(1, 0) + tinfo("t", [8], 0, 4)) + b"\0" * 64, "not aligned")
gguf_case("gguf-data-past-end", pad(header(1, 0) + tinfo("t", [64], 0, 0)) + b"\0" * 16, "larger than the whole file")
gguf_case("gguf-data-truncated", pad(header(1, 0) + tinfo("t", [8], 0, 32)) + b"\0" * 40, "runs past the end of the file")
gguf_case("gguf-overlap", pad(header(2, 0) + tinfo("a", [8], 0, 0) + tinfo("b", [8], 0, 0)) + b"\0" * 64, "overlap")
gguf_case("gguf-overflow-dims", pad(header(1, 0) + tinfo("t", [2**31 - 32, 2**31 - 1, 2**31 - 1, 2**31 - 1], 8, 0)) + b"\0" * 64, "larger than the whole file")
gguf_case("gguf-row-not-block-multiple", pad(header(1, 0) + tinfo("t", [33], 8, 0)) + b"\0" * 64, "not a multiple of the")
gguf_case("gguf-alignment-not-pow2", header(0, 1) + gstr("general.alignment") + u32(4) + u32(24), "not a power of two")
gguf_case("gguf-duplicate-tensor", pad(header(2, 0) + tinfo("a", [8], 0, 0) + tinfo("a", [8], 0, 32)) + b"\0" * 64, "appears twice")
gguf_case("gguf-arch-not-llama", tiny_llama(arch="gpt2"), "general.architecture 'gpt2'")
gguf_case("gguf-missing-block-count", tiny_llama(skip_kv=("llama.block_count",)), "llama.block_count")
gguf_case("gguf-missing-token-embd", tiny_llama(skip_tensor="token_embd.weight"), "token_embd.weight")
gguf_case("gguf-missing-layer-tensor", tiny_llama(skip_tensor="blk.0.attn_q.weight"), "missing tensor")
gguf_case("gguf-sentencepiece-tokenizer", tiny_llama(tokenizer="llama"), "tokenizer.ggml.scores",
          command="generate", args=["--prompt", "hello"])

# ---------- config.json ----------
cfg = json.load(open(os.path.join(ROOT, BASE, "config.json")))


def cfg_case(name, mutate, expect, raw=None):
    if raw is None:
        c = json.loads(json.dumps(cfg))
        mutate(c)
        raw = json.dumps(c, indent=1)
    case(name, "inspect", expect, files={"config.json": write(name + ".json", raw)})


def setk(path, value):
    def f(c):
        d = c
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return f


cfg_case("config-not-json", None, "invalid JSON", raw='{"model_type": "llava_next",')
cfg_case("config-array", None, "config", raw="[1, 2]")
cfg_case("config-unknown-model-type", setk(["model_type"], "blip2"), "blip2")
cfg_case("config-negative-hidden", setk(["text_config", "hidden_size"], -128), "hidden_size")
cfg_case("config-heads-not-dividing", setk(["text_config", "num_attention_heads"], 5), "attention heads are not a multiple")
cfg_case("config-feature-layer-out-of-range", setk(["vision_feature_layer"], 40), "vision_feature_layer")
cfg_case("config-image-token-outside-vocab", setk(["image_token_index"], 100000), "outside the vocabulary")
cfg_case("config-empty-pinpoints", setk(["image_grid_pinpoints"], []), "empty list")
cfg_case("config-ragged-pinpoints", setk(["image_grid_pinpoints"], [[112, 200]]), "is not a grid")
cfg_case("config-vision-type-unknown", setk(["vision_config", "model_type"], "swin"), "swin")
cfg_case("config-string-layers", setk(["text_config", "num_hidden_layers"], "two"), "num_hidden_layers")
cfg_case("config-huge-model", lambda c: c["text_config"].update(hidden_size=16384, intermediate_size=53248, num_hidden_layers=126,
                                                                 num_attention_heads=128, num_key_value_heads=8, vocab_size=128256),
         "needs about")

# ---------- processor_config.json (generate with an image) ----------
proc = json.load(open(os.path.join(ROOT, BASE, "processor_config.json")))
IMG = ["--image", "data/eval/scenes/scene_0001.png", "--prompt", "What colour is the square?", "--max-tokens", "2"]


def proc_case(name, mutate, expect, raw=None):
    if raw is None:
        p = json.loads(json.dumps(proc))
        mutate(p["image_processor"])
        raw = json.dumps(p, indent=1)
    case(name, "generate", expect, files={"processor_config.json": write(name + ".json", raw)}, args=IMG)


proc_case("processor-empty-pinpoints", lambda p: p.update(image_grid_pinpoints=[]), "empty list")
proc_case("processor-ragged-pinpoints", lambda p: p.update(image_grid_pinpoints=[[112, 150]]), "is not a grid")
proc_case("processor-zero-std", lambda p: p.update(image_std=[0, 0, 0]), "image_std")
proc_case("processor-resample-7", lambda p: p.update(resample=7), "resample")
proc_case("processor-unknown-type", lambda p: p.update(image_processor_type="SiglipImageProcessor"), "SiglipImageProcessor")
proc_case("processor-zero-crop", lambda p: p.update(crop_size={"height": 0, "width": 112}), "crop_size.height")
proc_case("processor-not-json", None, "invalid JSON", raw="{{")

# ---------- tokenizer.json (generate with a text prompt) ----------
tok = json.load(open(os.path.join(ROOT, BASE, "tokenizer.json")))
TXT = ["--prompt", "What colour is the square?", "--max-tokens", "2"]


def tok_case(name, mutate, expect, raw=None):
    if raw is None:
        t = json.loads(json.dumps(tok))
        mutate(t)
        raw = json.dumps(t)
    case(name, "generate", expect, files={"tokenizer.json": write(name + ".json", raw)}, args=TXT)


tok_case("tokenizer-not-json", None, "invalid JSON", raw='{"model": ')
tok_case("tokenizer-negative-added-id", lambda t: t["added_tokens"].append({"id": -1, "content": "<x>", "special": True}), "token id -1")
tok_case("tokenizer-huge-added-id", lambda t: t["added_tokens"].append({"id": 1 << 40, "content": "<x>", "special": True}), "token id 1099511627776")
tok_case("tokenizer-negative-vocab-id", lambda t: t["model"]["vocab"].update({"zz": -7}), "token id -7")
tok_case("tokenizer-merge-unknown", lambda t: t["model"]["merges"].insert(0, "qqq zzz"), "is not in the vocabulary")
tok_case("tokenizer-unigram", lambda t: t["model"].update(type="Unigram"), "model.type 'Unigram'")
tok_case("tokenizer-no-model", lambda t: t.pop("model"), "model")

# ---------- images ----------
def png(w, h, rows=None, truncate=None):
    raw = rows if rows is not None else b"".join(b"\0" + b"\x80" * (3 * w) for _ in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return data[:truncate] if truncate else data


def img_case(name, data, expect, ext="png", base=None, files=None):
    path = write(name + "." + ext, data)
    args = ["--image", "{corpus}/" + path, "--prompt", "What is it?", "--max-tokens", "2"]
    if files:
        case(name, "generate", expect, files=files, args=args, base=base)
    else:
        case(name, "generate", expect, args=args, base=base or BASE)


img_case("image-empty", b"", "not a PNG or JPEG")
img_case("image-text", "this is not an image\n", "not a PNG or JPEG", ext="txt")
img_case("image-png-truncated", png(64, 64, truncate=60), "image")
img_case("image-jpeg-header-only", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image")
img_case("image-png-bomb", png(100000, 100000, rows=b"\0\0\0\0"), "limit")
img_case("image-png-bad-crc", png(8, 8)[:40] + b"\0\0\0\0" + png(8, 8)[44:], "image")
clip_proc = {"image_processor": {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 112},
                                 "crop_size": {"height": 112, "width": 112}}}
clip_cfg = json.loads(json.dumps(cfg))
clip_cfg["model_type"] = "llava"
clip_cfg.pop("image_grid_pinpoints", None)
img_case("image-strip-1x200000", png(200000, 1), "over the 50000000-pixel limit",
         files={"processor_config.json": write("clip-processor.json", json.dumps(clip_proc)),
                "config.json": write("clip-config.json", json.dumps(clip_cfg))})

# ---------- arguments and prompts ----------
def arg_case(name, args, expect):
    case(name, "generate", expect, args=args, base=BASE)


arg_case("args-empty-tokens", ["--tokens", ""], "the prompt has no tokens")
arg_case("args-token-not-integer", ["--tokens", "1,abc"], "not an integer")
arg_case("args-token-negative", ["--tokens=-1,2"], "outside the vocabulary")
arg_case("args-token-beyond-vocab", ["--tokens", "5,99999"], "outside the vocabulary")
arg_case("args-max-tokens-beyond-context", ["--tokens", "5", "--max-tokens", "999999"], "max_position_embeddings")
arg_case("args-prompt-beyond-context", ["--tokens", ",".join(["5"] * 2100)], "context holds 2048")
arg_case("args-prune-ratio-2", ["--tokens", "5", "--prune", "hired:r=2"], "r")
arg_case("args-prune-unknown", ["--tokens", "5", "--prune", "nosuch"], "nosuch")
arg_case("args-kv-bad-number", ["--tokens", "5", "--kv", "avl:s=abc"], "abc")
arg_case("args-kv-dtype", ["--tokens", "5", "--kv-dtype", "q4"], "--kv-dtype must be one of")
arg_case("args-temperature-negative", ["--tokens", "5", "--temperature=-1"], "--temperature must be")
arg_case("args-top-p-2", ["--tokens", "5", "--top-p", "2"], "top-p")
arg_case("args-image-missing", ["--prompt", "hi", "--image", "no/such/file.png"], "file not found")
arg_case("args-max-pixels-zero", ["--prompt", "hi", "--max-pixels", "0"], "--max-pixels")


def pixels_file(name, sizes, shape=(1, 3, 4, 4), sizes_dtype="F32"):
    n = 1
    for x in shape:
        n *= x
    pv = struct.pack(f"<{n}f", *([0.0] * n))
    sz = struct.pack("<2f", *sizes) if sizes_dtype == "F32" else struct.pack("<2q", *[int(s) for s in sizes])
    hdr = json.dumps({"pixel_values": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, len(pv)]},
                      "image_sizes": {"dtype": sizes_dtype, "shape": [1, 2], "data_offsets": [len(pv), len(pv) + len(sz)]}})
    return write(name + ".safetensors", st(hdr, pv + sz))


arg_case("pixels-nan-size", ["--tokens", "5,3,6", "--pixels", "{corpus}/" + pixels_file("pixels-nan-size", [float("nan"), 224])], "not an integer")
arg_case("pixels-zero-size", ["--tokens", "5,3,6", "--pixels", "{corpus}/" + pixels_file("pixels-zero-size", [0, 224], sizes_dtype="I64")], "image height")
arg_case("pixels-negative-size", ["--tokens", "5,3,6", "--pixels", "{corpus}/" + pixels_file("pixels-negative-size", [224, -3], sizes_dtype="I64")], "image width")
arg_case("pixels-wrong-shape", ["--tokens", "5,3,6", "--pixels", "{corpus}/" + pixels_file("pixels-wrong-shape", [224, 224], sizes_dtype="I64")], "expected shape")


if __name__ == "__main__":
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases in {OUT}")
