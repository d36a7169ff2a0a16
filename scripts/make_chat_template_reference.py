#!/usr/bin/env python3
"""transformers' rendering of the shipped chat templates, for Fovea's ChatTemplate tests.

Both message forms: string content, and the VLM form (content as a list of {"type": "image"} /
{"type": "text"} parts) that processors' apply_chat_template is usually given.

    python3 scripts/make_chat_template_reference.py   # writes Fixtures/chat_templates.json
"""
import importlib.util
import json
import os

from transformers import AutoProcessor, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONVERSATIONS = {
    "one question, string": [{"role": "user", "content": "<image>\nWhat colour is the square?"}],
    "one question, parts": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the square?"}]}],
    "text only, parts": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    "system and two turns, parts": [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many circles?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "2"}]},
        {"role": "user", "content": [{"type": "text", "text": "And squares?"}]},
    ],
    "image after text, parts": [{"role": "user", "content": [{"type": "text", "text": "Look: "}, {"type": "image"}, {"type": "text", "text": "what is it?"}]}],
}


def main():
    out = {}
    processor = AutoProcessor.from_pretrained(os.path.join(ROOT, "models/fovea-test-llava"))
    out["fovea-test-llava"] = {name: processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
                               for name, conv in CONVERSATIONS.items()}
    spec = importlib.util.spec_from_file_location("assemble", os.path.join(ROOT, "scripts/realparts/assemble.py"))
    assemble = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assemble)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ROOT, "models/fovea-test-llava/tokenizer.json"))
    out["fovea-dino-smol"] = {name: tok.apply_chat_template(conv, chat_template=assemble.CHAT_TEMPLATE, add_generation_prompt=True, tokenize=False)
                              for name, conv in CONVERSATIONS.items()}
    out["conversations"] = CONVERSATIONS
    with open(os.path.join(ROOT, "Fixtures/chat_templates.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
