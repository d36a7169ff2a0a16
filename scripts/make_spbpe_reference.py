#!/usr/bin/env python3
"""A SentencePiece-style BPE tokenizer built the way Llama's tokenizer.json is (BPE with byte
fallback, `▁` for spaces, BOS added by the post-processor), trained with the `tokenizers`
library on a small generated corpus, plus its ids and decodes for the same 320 strings the
byte-level reference uses.

    python3 scripts/make_spbpe_reference.py     # needs tokenizers (bash scripts/setup.sh --python)

Writes Fixtures/tokenizers/llama-style/{tokenizer.json, reference.json}. Two variants of the
space handling are in the wild and both are written: `tokenizer.json` uses the Llama-2
normalizer (Prepend("▁") + Replace(" ", "▁")); `tokenizer-metaspace.json` uses the newer
Metaspace pre-tokenizer with prepend_scheme "first".
"""
import json
import os
import random
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_reference import strings  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Fixtures", "tokenizers", "llama-style")


def corpus():
    rng = random.Random(7)
    words = ("the a an is are what where which how many colour color red green blue yellow circle square triangle star "
             "left right top bottom middle image picture shows there one two three four five yes no letter digit "
             "question answer user assistant system hello world quick brown fox jumps over lazy dog café naïve").split()
    for _ in range(4000):
        yield " ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + rng.choice([".", "?", "!", ",", ""])
    for s in strings()[:60]:
        yield s


def build(metaspace):
    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, limit_alphabet=80, show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    trained = json.loads(tok.to_str())
    # Llama's layout: specials 0–2, the 256 byte tokens 3–258, then the learned pieces.
    vocab = {t: i for i, t in enumerate(specials + byte_tokens)}
    for t, _ in sorted(trained["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["model"]["merges"]]
    final = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    final.add_special_tokens(specials)
    if metaspace:
        # What transformers writes for Llama tokenizers with legacy=False.
        final.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:
        final.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    final.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                       decoders.Strip(" ", 1, 0)])
    final.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return final


def main():
    os.makedirs(OUT, exist_ok=True)
    import tokenizers
    for metaspace, name in [(False, "tokenizer.json"), (True, "tokenizer-metaspace.json")]:
        tok = build(metaspace)
        tok.save(os.path.join(OUT, name))
        cases = []
        for s in strings():
            ids = tok.encode(s).ids            # with BOS, as add_bos_token does
            cases.append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                          "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
        ref = name.replace("tokenizer", "reference")
        with open(os.path.join(OUT, ref), "w", encoding="utf-8") as f:
            json.dump({"tokenizers": tokenizers.__version__, "cases": cases}, f, ensure_ascii=False, indent=0)
        print(name, len(cases), "strings, vocab", tok.get_vocab_size())


if __name__ == "__main__":
    main()
