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
    swift build -c release --product fovea >/dev/null
    echo
    echo "== fovea generate on the real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI)"
    echo "Q: What is the capital of France?"
    echo -n "A: "
    .build/release/fovea generate --model "$gguf" --prompt "What is the capital of France?" --max-tokens 32
fi
