#!/usr/bin/env python3
"""A SentencePiece tokenizer as llama.cpp stores Llama's, Vicuna's and Mistral's in GGUF
(`tokenizer.ggml.model` "llama": pieces, scores and token types, no merges), with the ids the
`sentencepiece` library itself gives for the same 320 strings the other tokenizer fixtures use.

    python3 scripts/make_spm_gguf_reference.py   # sentencepiece, gguf, transformers (PyPI)

1. Trains a SentencePiece BPE model with Llama's settings (byte fallback, digits split, identity
   normalisation, extra whitespace kept, a dummy "▁" prefix) on the llama-style fixture's corpus.
2. Writes its vocabulary as llama.cpp's convert_hf_to_gguf.py `_create_vocab_sentencepiece`
   does (token types 1 normal, 2 unknown, 3 control, 6 byte) into a tensor-less GGUF, plus
   `tokenizer.ggml.add_bos_token` and the BOS/EOS/UNK ids.
3. Records, per string, sentencepiece's ids (BOS first, as llama.cpp adds it) and decode, and
   checks that transformers' own GGUF tokenizer loader agrees (it rebuilds BPE merges from the
   scores, as Fovea does).
Writes Fixtures/tokenizers/llama-spm/{tokenizer.gguf, reference.json}.
"""
import json
import os
import sys
import tempfile

import sentencepiece as spm
from gguf import GGUFWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_spbpe_reference import corpus  # noqa: E402
from make_tokenizer_reference import strings  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Fixtures", "tokenizers", "llama-spm")
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "corpus.txt")
        with open(text, "w", encoding="utf-8") as f:
            for line in corpus():
                f.write(line.replace("\n", " ") + "\n")
        prefix = os.path.join(tmp, "spm")
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix, model_type="bpe", vocab_size=900, byte_fallback=True, split_digits=True,
            normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
            allow_whitespace_only_pieces=True, character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            num_threads=1, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")

        tokens, scores, types = [], [], []
        for i in range(sp.vocab_size()):
            tokens.append(sp.id_to_piece(i))
            scores.append(sp.get_score(i))
            types.append(UNKNOWN if sp.is_unknown(i) else CONTROL if sp.is_control(i) else UNUSED if sp.is_unused(i)
                         else BYTE if sp.is_byte(i) else NORMAL)
        path = os.path.join(OUT, "tokenizer.gguf")
        w = GGUFWriter(path, "llama")
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(OUT, gguf_file="tokenizer.gguf")
    cases, disagree = [], 0
    for s in strings():
        ids = [1] + sp.encode(s)
        if hf(s)["input_ids"] != ids:
            disagree += 1
        cases.append({"text": s, "ids": ids, "decoded": sp.decode(ids[1:])})
    with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"sentencepiece": spm.__version__, "cases": cases}, f, ensure_ascii=False, indent=0)
    print(f"{len(cases)} strings, vocabulary {sp.vocab_size()}; transformers' GGUF tokenizer differs on {disagree}")


if __name__ == "__main__":
    main()
