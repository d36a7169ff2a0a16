#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-mtmd-cli, llama-quantize and llama-tokenize from the PyPI sdist (source.sh),
# CPU only, into .cache/llama.cpp/build-<flavour>. Prints the bin directory.
#   build.sh            GGML_NATIVE=ON: every instruction set this CPU has (the fastest build here)
#   build.sh avx512     AVX-512 (F/BW/VL/VNNI/BF16) switched on explicitly, AMX off: for CPUs where
#                       the native build dies with an illegal instruction (seen on a Sapphire Rapids VM)
#   build.sh avx2       AVX2 + FMA + F16C only
# cmake and ninja come from PyPI into .cache/venv when the machine has none.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
flavour="${1:-native}"
src="$(bash "$root/scripts/llamacpp/source.sh")"
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
    [ -x "$root/.cache/venv/bin/python" ] || python3 -m venv "$root/.cache/venv"
    "$root/.cache/venv/bin/pip" install -q cmake ninja
    export PATH="$root/.cache/venv/bin:$PATH"
fi
case "$flavour" in
    native) isa=(-DGGML_NATIVE=ON) ;;
    avx512) isa=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON
                 -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF) ;;
    avx2)   isa=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON) ;;
    *) echo "error: unknown flavour '$flavour' (native, avx512, avx2)" >&2; exit 2 ;;
esac
build="$root/.cache/llama.cpp/build-$flavour"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${isa[@]}" \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$build.cmake.log" 2>&1 \
    || { tail -20 "$build.cmake.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" --target llama-bench llama-mtmd-cli llama-quantize llama-tokenize >"$build.log" 2>&1 \
    || { tail -30 "$build.log" >&2; exit 1; }
echo "$build/bin"
