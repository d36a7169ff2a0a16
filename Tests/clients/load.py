#!/usr/bin/env python3
"""A bounded load on `fovea serve`, on loopback: a fixed number of requests from a few concurrent
clients, mixing methods, streamed and whole answers, images, bad requests and clients that hang
up mid-stream, under a wall-clock limit. Afterwards the server must still answer, hold no KV
for running requests, have no request running or waiting, and its counters must add up.

    python3 Tests/clients/load.py [--fovea .build/debug/fovea] [--model M] [--requests 40]
                                  [--concurrency 4] [--time-limit 120]

Prints the latency percentiles and closes with 'N passed, N failed'; exits 1 on any failure.
"""
import argparse
import base64
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start(fovea, model):
    proc = subprocess.Popen([fovea, "serve", "--model", model, "--port", "0"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"on http://127\.0\.0\.1:(\d+)", line or "")
        if m:
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    sys.exit("fovea serve did not start")


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return {l.split(" ")[0]: float(l.split(" ")[1]) for l in text.splitlines() if l and not l.startswith("#") and "{" not in l}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fovea", default=os.path.join(ROOT, ".build", "debug", "fovea"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "fovea-test-llava-small"))
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--time-limit", type=float, default=120)
    args = ap.parse_args()
    images = sorted(os.path.join(ROOT, "data/eval/scenes", f) for f in os.listdir(os.path.join(ROOT, "data/eval/scenes")))[:3]
    uris = ["data:image/png;base64," + base64.b64encode(open(p, "rb").read()).decode() for p in images]
    methods = [{}, {"prune": "hired:r=0.2"}, {"kv": "avl"}, {"prune": "fastv:k=1"}, {"kv": "streaming:sink=4,window=0.5", "kv_dtype": "q8_0"}]

    def body(i):
        kind = i % 10
        if kind == 9:
            return "bad", b'{"messages": [ '
        if kind == 8:
            return "bad", json.dumps({"messages": [{"role": "user", "content": "hi"}], "fovea": {"prune": "nope"}}).encode()
        content = [{"type": "image_url", "image_url": {"url": uris[i % len(uris)]}}, {"type": "text", "text": f"Question {i}: what is in it?"}]
        req = {"messages": [{"role": "user", "content": content}], "max_tokens": 8 + i % 8, "fovea": methods[i % len(methods)]}
        if kind in (1, 4):
            req.update(stream=True, stream_options={"include_usage": True})
        if kind == 7:
            req.update(stream=True, max_tokens=400)
            return "hangup", json.dumps(req).encode()
        return ("stream" if req.get("stream") else "whole"), json.dumps(req).encode()

    proc, port = start(args.fovea, args.model)
    results, lock, next_i = [], threading.Lock(), [0]
    deadline = time.time() + args.time_limit

    def client():
        while time.time() < deadline:
            with lock:
                if next_i[0] >= args.requests:
                    return
                i = next_i[0]
                next_i[0] += 1
            kind, data = body(i)
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(1, deadline - time.time()))
                conn.request("POST", "/v1/chat/completions", body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                if kind == "hangup":
                    resp.fp.readline()          # the first chunk, then hang up
                    conn.sock.close()
                    status, ok = resp.status, resp.status == 200
                else:
                    text = resp.read().decode()
                    status = resp.status
                    ok = (status == 400 and '"error"' in text) if kind == "bad" else (
                        status == 200 and (text.rstrip().endswith("data: [DONE]") if kind == "stream" else '"choices"' in text))
            except Exception as e:  # noqa: BLE001 - a transport failure is a failed request
                status, ok = f"{type(e).__name__}", False
            with lock:
                results.append((kind, status, ok, time.perf_counter() - t0))

    t_start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.time_limit + 30)
    wall = time.perf_counter() - t_start

    checks = []

    def check(name, cond, detail=""):
        checks.append(bool(cond))
        print(("ok    " if cond else "FAIL  ") + name + (f": {detail}" if detail and not cond else ""))

    check(f"all {args.requests} requests sent within {args.time_limit:.0f} s", len(results) == args.requests, f"{len(results)} done")
    bad = [r for r in results if not r[2]]
    check("every request answered as expected (200, or a 400 with an error body)", not bad, str(bad[:5]))
    # The server finishes the hung-up streams at their next token: wait until nothing runs.
    m = {}
    for _ in range(200):
        m = metrics(port)
        if m.get("vllm:num_requests_running") == 0 and m.get("vllm:num_requests_waiting") == 0:
            break
        time.sleep(0.1)
    check("nothing running or waiting afterwards", m.get("vllm:num_requests_running") == 0 and m.get("vllm:num_requests_waiting") == 0, str(m))
    check("no KV held for running requests", m.get("fovea_kv_pool_bytes_in_use") == 0, str(m.get("fovea_kv_pool_bytes_in_use")))
    served = sum(1 for r in results if r[0] in ("whole", "stream") and r[2])
    # A client that hung up after the first chunk may still have had its (short) answer finished.
    hung = sum(1 for r in results if r[0] == "hangup")
    check("vllm:request_success_total counts the finished answers", served <= m.get("vllm:request_success_total", -1) <= served + hung,
          f"{m.get('vllm:request_success_total')} against {served} answered and {hung} hung up")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    check("still healthy", conn.getresponse().status == 200)
    proc.terminate()
    code = proc.wait(timeout=60)
    check("SIGTERM: exit status 0", code == 0, str(code))

    lat = sorted(r[3] for r in results if r[0] in ("whole", "stream") and r[2])
    if lat:
        pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        print(f"{len(results)} requests ({served} answered, {sum(r[0] == 'bad' for r in results)} bad, "
              f"{sum(r[0] == 'hangup' for r in results)} hung up) from {args.concurrency} clients in {wall:.1f} s; "
              f"answer latency p50 {statistics.median(lat):.2f} s, p95 {pct(0.95):.2f} s, max {lat[-1]:.2f} s; "
              f"vision cache hits {m.get('fovea_vision_cache_hits_total', 0):.0f}, prompt rows reused {m.get('fovea_prompt_tokens_reused_total', 0):.0f}")
    passed = sum(checks)
    print(f"{passed} passed, {len(checks) - passed} failed")
    sys.exit(0 if passed == len(checks) else 1)


if __name__ == "__main__":
    main()
