#!/usr/bin/env python3
"""Fovea beside llama.cpp (and PyTorch) on the same GGUF files, the same machine, the same hour,
2 threads each: LLaVA-1.5 with TinyLLaVA's shapes (CLIP ViT-L/14-336 + a 1.1B Llama), random
weights converted by llama.cpp's own converters to F16 and Q8_0 (scripts/llamacpp/convert_llava.py).

For each file type, medians of --runs:
  image encode   the vision tower + projector on one 336-px image (llama-mtmd-cli's
                 "mtmd batch encoding done in"; Fovea's bench "vision")
  image prefill  the 576 visual tokens (+ the prompt) through the LLM (llama-mtmd-cli's
                 "image decoded"; Fovea's bench "prefill", 590 tokens)
  pp512, tg128   llama-bench's; Fovea's bench with 512 prompt tokens, and 128 decode steps after a
                 1-token prompt (llama-bench decodes from an empty context too)
  peak RSS       /usr/bin/time's maximum resident set: image + prompt + 16 generated tokens
                 (llama-mtmd-cli; fovea generate)
PyTorch (transformers, float32 weights, 2 threads) from scripts/bench_torch.py on the same shapes.

    python3 scripts/llamacpp/side_by_side.py [--runs 3] [--types f16,q8_0] [--activations float|int8] [--no-torch] [--out FILE.json]

Builds what is missing first: llama.cpp (scripts/llamacpp/build.sh), Fovea (swift build -c
release), the random checkpoint and its GGUF files under .cache/sbs/.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SBS = os.path.join(ROOT, ".cache", "sbs")
IMAGE = os.path.join(ROOT, "data", "eval", "scenes", "scene_0000.png")
PROMPT = "Describe the image."


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def max_rss_gb(stderr: str) -> float:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) / 1e6 if m else float("nan")


def prepare(types, build_fovea=True):
    llama_bin = sh(["bash", os.path.join(ROOT, "scripts/llamacpp/build.sh")]).stdout.strip().splitlines()[-1]
    if build_fovea:
        sh(["swift", "build", "-c", "release", "--product", "fovea"], cwd=ROOT)
    hf = os.path.join(SBS, "tinyllava")
    if not os.path.exists(os.path.join(hf, "config.json")):
        sh([sys.executable, os.path.join(ROOT, "scripts/llamacpp/make_random_llava.py"), "--shape", "tinyllava", "--out", hf])
    gguf = os.path.join(SBS, "gguf")
    for t in types:
        if not os.path.exists(os.path.join(gguf, f"tinyllava-{t}.gguf")):
            sh([sys.executable, os.path.join(ROOT, "scripts/llamacpp/convert_llava.py"), "--model", hf, "--out", gguf, "--outtype", t])
    return llama_bin, gguf


def llama_cpp(bin_dir, text, mmproj, runs):
    out = {}
    bench = json.loads(sh([os.path.join(bin_dir, "llama-bench"), "-m", text, "-p", "512", "-n", "128", "-t", "2",
                           "-r", str(runs), "-o", "json"]).stdout)
    for row in bench:
        key = "pp512" if row["n_prompt"] == 512 else "tg128"
        out[key] = row["avg_ts"]
    enc, dec, rss = [], [], []
    for _ in range(runs):
        r = subprocess.run(["/usr/bin/time", "-v", os.path.join(bin_dir, "llama-mtmd-cli"), "-m", text, "--mmproj", mmproj,
                            "--image", IMAGE, "-p", PROMPT, "-n", "16", "--temp", "0", "-t", "2", "--no-mmproj-offload",
                            "-lv", "4"], text=True, capture_output=True, check=True)
        log = r.stdout + r.stderr
        enc.append(float(re.search(r"batch encoding done in (\d+) ms", log).group(1)) / 1000)
        dec.append(float(re.search(r"image decoded \(batch 1/1\) in (\d+) ms", log).group(1)) / 1000)
        rss.append(max_rss_gb(r.stderr))
    out.update(encode_s=statistics.median(enc), image_prefill_s=statistics.median(dec), peak_rss_gb=statistics.median(rss))
    return out


def fovea(text, mmproj, runs, activations, exe):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        def bench(name, *args):
            path = os.path.join(tmp, name + ".json")
            sh([exe, "bench", "--model", text, "--runs", str(runs), "--json", path, "--activations", activations, *args])
            with open(path) as f:
                return json.load(f)["rows"][0]
        img = bench("image", "--mmproj", mmproj, "--image", IMAGE, "--prompt-tokens", "14", "--decode", "1")
        out.update(encode_s=img["vision_s"], image_prefill_s=img["prefill_s"])
        out["pp512"] = 512 / bench("pp", "--prompt-tokens", "512", "--decode", "1")["prefill_s"]
        out["tg128"] = 1000 / bench("tg", "--prompt-tokens", "1", "--decode", "128")["decode_ms_per_token"]
    rss = []
    for _ in range(runs):
        r = subprocess.run(["/usr/bin/time", "-v", exe, "generate", "--model", text, "--mmproj", mmproj, "--image", IMAGE,
                            "--prompt", PROMPT, "--max-tokens", "16", "--activations", activations], text=True, capture_output=True, check=True)
        rss.append(max_rss_gb(r.stderr))
    out["peak_rss_gb"] = statistics.median(rss)
    return out


def torch_figures(runs):
    log = sh([sys.executable, os.path.join(ROOT, "scripts/bench_torch.py"), "--runs", str(runs), "--decode", "32"]).stdout
    m = re.search(r"median: vision ([\d.]+) s, prefill ([\d.]+) s, decode ([\d.]+) ms/token", log)
    return dict(encode_s=float(m.group(1)), image_prefill_s=float(m.group(2)), tg=1000 / float(m.group(3)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--types", default="f16,q8_0")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--activations", default="float", help="Fovea's --activations: float, or int8 (llama.cpp's arithmetic)")
    ap.add_argument("--out", help="also write the figures as JSON")
    ap.add_argument("--fovea", help="the fovea binary to measure, as built (another build, to compare two in the same hour); "
                    "default: this checkout's, built first")
    args = ap.parse_args()
    types = args.types.split(",")
    bin_dir, gguf = prepare(types, build_fovea=args.fovea is None)
    exe = args.fovea or os.path.join(ROOT, ".build/release/fovea")
    mmproj = os.path.join(gguf, "mmproj-tinyllava-f16.gguf")
    results = {"activations": args.activations, "machine": sh(["bash", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; nproc"]).stdout.split()}
    for t in types:
        text = os.path.join(gguf, f"tinyllava-{t}.gguf")
        results[t] = {"fovea": fovea(text, mmproj, args.runs, args.activations, exe), "llama.cpp": llama_cpp(bin_dir, text, mmproj, args.runs)}
        print(t, json.dumps(results[t]), flush=True)
    if not args.no_torch:
        results["torch_f32"] = torch_figures(args.runs)
        print("torch", json.dumps(results["torch_f32"]), flush=True)
    print()
    print("| weights | | image encode | image prefill (590 tok) | pp512 tok/s | tg128 tok/s | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for t in types:
        f, l = results[t]["fovea"], results[t]["llama.cpp"]
        print(f"| {t} | Fovea | {f['encode_s']:.2f} s | {f['image_prefill_s']:.2f} s | {f['pp512']:.1f} | {f['tg128']:.1f} | {f['peak_rss_gb']:.2f} GB |")
        print(f"| {t} | llama.cpp | {l['encode_s']:.2f} s | {l['image_prefill_s']:.2f} s | {l['pp512']:.1f} | {l['tg128']:.1f} | {l['peak_rss_gb']:.2f} GB |")
        print(f"| {t} | **Fovea ÷ llama.cpp** (speed; >1 = Fovea faster) | **{l['encode_s'] / f['encode_s']:.2f}×** | "
              f"**{l['image_prefill_s'] / f['image_prefill_s']:.2f}×** | **{f['pp512'] / l['pp512']:.2f}×** | "
              f"**{f['tg128'] / l['tg128']:.2f}×** | {f['peak_rss_gb'] / l['peak_rss_gb']:.2f} (memory) |")
    if "torch_f32" in results:
        p = results["torch_f32"]
        print(f"| f32 | PyTorch {p['encode_s']:.2f} s encode, {p['image_prefill_s']:.2f} s prefill (616 tok), {p['tg']:.1f} tok/s decode | | | | | |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
