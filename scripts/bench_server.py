#!/usr/bin/env python3
"""`fovea serve` beside `fovea generate` on the same image request, and what the vision-feature
cache saves on a second question about the same image. Release build, loopback, standard library.

For each run (medians reported):
  generate TTFT    `fovea generate --stats-json`'s image load + vision + prefill (the process
                   start and the model load excluded), the request's image and question
  server TTFT      seen by the client: from sending the request to the first streamed chunk
                   (the server sends it once prefill is done), a new image each run (cache miss)
  server internal  the same request's `timings.prompt_ms` (image load + vision + prefill inside the server)
  overhead         server TTFT − generate TTFT, as a share of generate's
  inter-token      the client's gaps between content chunks against generate's decode ms/token
  follow-up TTFT   a second question about the same image: its features from the vision cache,
                   and the rows it shares with the first request (template, image) from the KV
                   prefix the server kept, so only the new question's rows go through the LLM

    python3 scripts/bench_server.py --model M [--mmproj F] [--runs 5] [--max-tokens 16] [--out FILE.json]
"""
import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXE = os.path.join(ROOT, ".build", "release", "fovea")
SCENES = os.path.join(ROOT, "data", "eval", "scenes")


def start_server(model, mmproj):
    args = [EXE, "serve", "--model", model, "--port", "0"] + (["--mmproj", mmproj] if mmproj else [])
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    deadline = time.time() + 600
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"on http://127\.0\.0\.1:(\d+)", line or "")
        if m:
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    sys.exit("fovea serve did not start")


def stream_request(port, image, question, max_tokens):
    import base64
    with open(image, "rb") as f:
        uri = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    body = json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}},
                                                                 {"type": "text", "text": question}]}],
                       "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    first, content_times, timings = None, [], None
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: "):
            continue
        now = time.perf_counter()
        if first is None:
            first = now - t0
        if line == "data: [DONE]":
            break
        chunk = json.loads(line[6:])
        if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            content_times.append(now)
        if chunk.get("timings"):
            timings = chunk["timings"]
    conn.close()
    gaps = [b - a for a, b in zip(content_times, content_times[1:])]
    return first, gaps, timings


def generate(model, mmproj, image, question, max_tokens):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([EXE, "generate", "--model", model, *(["--mmproj", mmproj] if mmproj else []), "--image", image,
                        "--prompt", question, "--max-tokens", str(max_tokens), "--stats-json", f.name],
                       check=True, capture_output=True, cwd=ROOT)
        s = json.load(open(f.name))
    return s["image_load_s"] + s["ttft_s"], s["decode_ms_per_token"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--mmproj")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--out")
    args = ap.parse_args()
    images = sorted(os.path.join(SCENES, f) for f in os.listdir(SCENES) if f.endswith(".png"))
    random.Random(1).shuffle(images)
    question, follow_up = "Describe the image.", "What colours are in it?"
    proc, port = start_server(args.model, args.mmproj)
    rows = []
    try:
        stream_request(port, images[-1], question, args.max_tokens)   # warm-up
        for i in range(args.runs):
            image = images[i]
            g_ttft, g_decode = generate(args.model, args.mmproj, image, question, args.max_tokens)
            s_ttft, gaps, timings = stream_request(port, image, question, args.max_tokens)
            hit_ttft, _, hit_timings = stream_request(port, image, follow_up, args.max_tokens)
            assert timings["vision_cache_hit"] is False and hit_timings["vision_cache_hit"] is True
            rows.append(dict(generate_ttft_s=g_ttft, server_ttft_s=s_ttft, server_internal_ttft_s=timings["prompt_ms"] / 1000,
                             generate_decode_ms=g_decode, server_inter_token_ms=1000 * statistics.median(gaps) if gaps else float("nan"),
                             cache_hit_ttft_s=hit_ttft, vision_s=timings["vision_ms"] / 1000, prompt_n=timings["prompt_n"],
                             follow_up_cached_rows=hit_timings["cache_n"], first_cached_rows=timings["cache_n"]))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    cpu = subprocess.run(["bash", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    print(f"\n{args.model} on {cpu}, {args.runs} runs, medians; {med['prompt_n']:.0f} prompt rows "
          f"(the first question reused {med['first_cached_rows']:.0f} template rows from the request before it)")
    print("| | generate | server (client-side) | server (internal) | overhead |")
    print("|---|---|---|---|---|")
    print(f"| TTFT | {med['generate_ttft_s']:.3f} s | {med['server_ttft_s']:.3f} s | {med['server_internal_ttft_s']:.3f} s | "
          f"{100 * (med['server_ttft_s'] - med['generate_ttft_s']) / med['generate_ttft_s']:+.1f}% |")
    print(f"| inter-token | {med['generate_decode_ms']:.1f} ms | {med['server_inter_token_ms']:.1f} ms | | "
          f"{100 * (med['server_inter_token_ms'] - med['generate_decode_ms']) / med['generate_decode_ms']:+.1f}% |")
    print(f"| second question, same image (vision cache + KV prefix) | | {med['cache_hit_ttft_s']:.3f} s | | "
          f"{med['server_ttft_s'] / med['cache_hit_ttft_s']:.2f}× lower TTFT ({med['follow_up_cached_rows']:.0f} of "
          f"{med['prompt_n']:.0f} rows reused; vision {med['vision_s']:.3f} s of {med['server_internal_ttft_s']:.3f}) |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(model=args.model, cpu=cpu, runs=rows, medians=med), f, indent=2)


if __name__ == "__main__":
    main()
