#!/usr/bin/env python3
"""`fovea serve` driven by OpenAI's own Python client, on loopback.

Starts the server on the shipped test model (a free port, an API key), then checks what a user
of the `openai` package sees: a chat answer, a streamed one with usage, an image as a data URI,
a per-request method through `extra_body`, and errors as the client's typed exceptions.

    python3 Tests/clients/openai_client.py [--fovea .build/debug/fovea]

Prints one line per check and closes with 'N passed, N failed'; exits 1 on any failure.
"""
import argparse
import base64
import os
import re
import subprocess
import sys
import time

import openai

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "fovea-test-llava-small")
IMAGE = os.path.join(ROOT, "data", "eval", "scenes", "scene_0000.png")


def start(fovea):
    proc = subprocess.Popen([fovea, "serve", "--model", MODEL, "--port", "0", "--api-key", "test-key",
                             "--alias", "small-hired=prune=hired:r=0.2;kv=avl"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    deadline = time.time() + 60
    log = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        log += line
        m = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    sys.exit(f"fovea serve did not start:\n{log}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fovea", default=os.path.join(ROOT, ".build", "debug", "fovea"))
    args = ap.parse_args()
    proc, port = start(args.fovea)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="test-key", max_retries=0, timeout=120)
    results = []

    def check(name, fn):
        try:
            fn()
            results.append(True)
            print(f"ok    {name}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            results.append(False)
            print(f"FAIL  {name}: {type(e).__name__}: {e}")

    with open(IMAGE, "rb") as f:
        data_uri = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    image_message = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_uri}},
                                                  {"type": "text", "text": "What is in the picture?"}]}]

    def models():
        ids = [m.id for m in client.models.list().data]
        assert ids == ["fovea-test-llava-small", "small-hired"], ids

    def chat():
        r = client.chat.completions.create(model="fovea-test-llava-small", messages=[{"role": "user", "content": "Hello"}], max_tokens=6)
        assert r.choices[0].message.role == "assistant"
        assert r.choices[0].finish_reason in ("stop", "length")
        assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    def image():
        r = client.chat.completions.create(model="fovea-test-llava-small", messages=image_message, max_tokens=8)
        t = r.model_extra["timings"]
        assert t["visual_tokens_in"] > 0 and t["visual_tokens_kept"] == t["visual_tokens_in"], t

    def stream():
        chunks = list(client.chat.completions.create(model="fovea-test-llava-small", messages=image_message, max_tokens=8,
                                                     stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        whole = client.chat.completions.create(model="fovea-test-llava-small", messages=image_message, max_tokens=8)
        assert text == whole.choices[0].message.content, (text, whole.choices[0].message.content)
        assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens

    def per_request_method():
        r = client.chat.completions.create(model="fovea-test-llava-small", messages=image_message, max_tokens=4,
                                           extra_body={"fovea": {"prune": "hired:r=0.2", "kv": "avl"}})
        t = r.model_extra["timings"]
        assert t["visual_tokens_kept"] < t["visual_tokens_in"] and t["method"].startswith("prune=hired:r=0.2 kv=avl"), t

    def alias():
        r = client.chat.completions.create(model="small-hired", messages=image_message, max_tokens=4)
        assert r.model_extra["timings"]["method"].startswith("prune=hired:r=0.2"), r.model_extra

    def unknown_method():
        try:
            client.chat.completions.create(model="fovea-test-llava-small", messages=image_message, extra_body={"fovea": {"prune": "magic"}})
        except openai.BadRequestError as e:
            assert "unknown method 'magic'" in e.message and "hired" in e.message, e.message
            return
        raise AssertionError("no error")

    def unknown_model():
        try:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        except openai.NotFoundError as e:
            assert e.code == "model_not_found", e
            return
        raise AssertionError("no error")

    def wrong_key():
        other = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0)
        try:
            other.chat.completions.create(model="fovea-test-llava-small", messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError:
            return
        raise AssertionError("no error")

    for name, fn in [("models and aliases", models), ("a text chat", chat), ("an image as a data URI", image),
                     ("streaming equals the whole answer, usage on the last chunk", stream),
                     ("a method per request (extra_body)", per_request_method), ("an alias selects its method", alias),
                     ("an unknown method is a BadRequestError listing the valid ones", unknown_method),
                     ("an unknown model is a NotFoundError", unknown_model), ("a wrong key is an AuthenticationError", wrong_key)]:
        check(name, fn)

    proc.terminate()
    code = proc.wait(timeout=60)
    results.append(code == 0)
    print(("ok    " if code == 0 else "FAIL  ") + f"SIGTERM: exit status {code}")
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
