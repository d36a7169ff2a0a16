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
echo "== fovea generate from an image file (JPEG → LLaVA-NeXT processor → 5 partitions → 70 visual tokens)"
tokens="1,5,17,9,179,23,42,11,7,3"          # the image token 179 once: Fovea expands it to the image's visual tokens
out=$(.build/release/fovea generate --model "$model" --image Fixtures/images/baseline.jpg --tokens "$tokens" --max-tokens 8)
echo "fovea:        $out"
echo "transformers: 137 114 92 6 179 88 77 12   (Fixtures/images/end_to_end.json: its processor and model on the same file)"
echo "(a random-weight fixture: the tokens mean nothing; the trained test model will answer in words)"

gguf=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$gguf" ]; then
    swift build -c release --product fovea >/dev/null
    echo
    echo "== fovea generate on the real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI)"
    echo "Q: What is the capital of France?"
    echo -n "A: "
    .build/release/fovea generate --model "$gguf" --prompt "What is the capital of France?" --max-tokens 32
fi
