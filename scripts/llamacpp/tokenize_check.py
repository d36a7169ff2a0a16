#!/usr/bin/env python3
"""Tokenizes every string of the SentencePiece fixture with llama.cpp's own `llama-tokenize`
(vocab-only load of Fixtures/tokenizers/llama-spm/tokenizer.gguf, BOS as the file asks, the
bytes read verbatim) and compares with the ids the fixture holds, which Fovea's tests assert.
Records the outcome in reference.json as "llama_cpp" so the fixture says which references agree
(rerun it after scripts/make_spm_gguf_reference.py, which rewrites reference.json).

    bash scripts/llamacpp/build.sh            # builds llama-tokenize among the other tools
    python3 scripts/llamacpp/tokenize_check.py [--bin .cache/llama.cpp/build-native/bin]
"""
import argparse, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(ROOT, "Fixtures", "tokenizers", "llama-spm")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".cache", "llama.cpp", "build-native", "bin"))
    args = ap.parse_args()
    tool = os.path.join(args.bin, "llama-tokenize")
    if not os.access(tool, os.X_OK):
        sys.exit(f"error: {tool} is missing; run scripts/llamacpp/build.sh first")
    path = os.path.join(FOLDER, "reference.json")
    with open(path, encoding="utf-8") as f:
        ref = json.load(f)
    env = dict(os.environ, LD_LIBRARY_PATH=args.bin)
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        text_file = os.path.join(tmp, "text")
        for case in ref["cases"]:
            with open(text_file, "wb") as f:
                f.write(case["text"].encode("utf-8"))
            run = subprocess.run([tool, "-m", os.path.join(FOLDER, "tokenizer.gguf"), "-f", text_file, "--ids",
                                  "--log-disable", "--no-escape"], capture_output=True, text=True, env=env)
            lines = run.stdout.strip().splitlines()
            if run.returncode != 0 or not lines or not lines[-1].startswith("["):
                sys.exit(f"error: llama-tokenize failed on {case['text']!r}: {run.stderr[-300:]}")
            if json.loads(lines[-1]) != case["ids"]:
                differ.append(case["text"])
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, env=env)
    source = (version.stdout + version.stderr).strip().splitlines()[0]
    ref["llama_cpp"] = {"tool": "llama-tokenize", "source": source, "cases": len(ref["cases"]),
                        "equal": len(ref["cases"]) - len(differ)}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=0)
    print(f"llama-tokenize equals the fixture's ids on {len(ref['cases']) - len(differ)} of {len(ref['cases'])} strings")
    for text in differ[:10]:
        print(f"  differs: {text!r}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
