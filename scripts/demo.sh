#!/usr/bin/env bash
# Set up, build, and run Fovea end to end on a shipped checkpoint: inspect it, then
# generate from its reference prompt and image pixels, and compare with transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product fovea
model=Fixtures/models/llava-next-tiny
echo "== fovea inspect $model"
.build/release/fovea inspect "$model" --context 4096
echo
echo "== fovea generate (prompt token ids, preprocessed pixels of a 100×110 image → 2×2 anyres grid)"
tokens="1,5,17,9,179,23,42,11,7,3"          # the image token 179 once: Fovea expands it to 88 visual tokens
out=$(.build/release/fovea generate --model "$model" --pixels "$model/reference.safetensors" --tokens "$tokens" --max-tokens 8)
echo "fovea:        $out"
echo "transformers: 137 84 77 59 69 23 132 59   (Fixtures/models/llava-next-tiny/reference.safetensors, greedy_tokens)"

gguf=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$gguf" ]; then
    echo
    echo "== fovea generate on the real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI), chat prompt 'What is the capital of France?'"
    ids="1,9690,198,2683,359,253,5356,5646,11173,3365,3511,308,34519,28,7018,411,407,19712,8182,2,198,1,4093,198,1780,314,260,3575,282,4649,47,2,198,1,520,9531,198"
    out=$(.build/release/fovea generate --model "$gguf" --tokens "$ids" --max-tokens 12)
    echo "fovea:        $out"
    echo "transformers: 504 3575 282 4649 314 7042 30 2   ('The capital of France is Paris.<|im_end|>'; text in and out arrive with the tokenizer)"
fi
