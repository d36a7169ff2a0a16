#!/usr/bin/env bash
# The seeds' headline in shape: LLaVA-NeXT with Vicuna-7B's shapes (CLIP ViT-L/14-336 + a
# 32-layer, 4096-wide Llama; random weights), one 672×672 image → 2×2 tiles + base → 2,928 visual
# tokens, language model Q4_0 (llama-quantize --pure from F16), mmproj F16, 2 threads.
#   Fovea: Full, HiRED r=0.2, A-VL (s=0.5), HiRED + A-VL, from the two GGUF files
#   llama.cpp: Full, llama-mtmd-cli on the same files and image
# Builds what is missing (about 20 GB of disk under .cache/sbs, 15 GB of memory while converting).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
sbs=.cache/sbs
bin="$(bash scripts/llamacpp/build.sh)"
# FOVEA=PATH measures another build (to compare two in the same hour) instead of building this checkout's.
fovea="${FOVEA:-}"
if [ -z "$fovea" ]; then swift build -c release --product fovea >/dev/null; fovea=.build/release/fovea; fi
if [ ! -f $sbs/gguf/llava-next-7b-q4_0.gguf ]; then
    [ -f $sbs/llava-next-7b/config.json ] || python3 scripts/llamacpp/make_random_llava.py --shape llava-next-7b --out $sbs/llava-next-7b
    python3 scripts/llamacpp/convert_llava.py --model $sbs/llava-next-7b --out $sbs/gguf --outtype f16
    "$bin/llama-quantize" --pure $sbs/gguf/llava-next-7b-f16.gguf $sbs/gguf/llava-next-7b-q4_0.gguf Q4_0 2 >/dev/null
fi
text=$sbs/gguf/llava-next-7b-q4_0.gguf
mmproj=$sbs/gguf/mmproj-llava-next-7b-f16.gguf
image=$sbs/noise-672.png
[ -f $image ] || python3 -c "
import numpy as np, PIL.Image
PIL.Image.fromarray(np.random.default_rng(3).integers(0, 256, (672, 672, 3), dtype=np.uint8)).save('$image')"
avl='kv=avl:s=0.5,c=0.3,k=3,t=0.6'
echo "== Fovea ($(date -u +%H:%M))"
/usr/bin/time -v "$fovea" bench --model $text --mmproj $mmproj --image $image --runs "${RUNS:-1}" --decode 16 \
    --prompt-tokens 40 --methods "prune=hired:r=0.2;$avl;prune=hired:r=0.2 $avl" --json "${OUT:-/tmp}/headline-7b-fovea.json" 2>&1 \
    | grep -vE "^\s+(Average|Major|Minor|Volun|Invol|Swaps|File|Socket|Signals|Page|Exit|Percent|System|User)"
echo "== llama.cpp ($(date -u +%H:%M))"
/usr/bin/time -v "$bin/llama-mtmd-cli" -m $text --mmproj $mmproj --image $image -p "Describe the image." -n 16 --temp 0 \
    -t 2 -c 4096 --no-mmproj-offload -lv 4 2>&1 \
    | grep -E "encoding done in|image decoded|prompt eval time|eval time|Maximum resident|Elapsed"
