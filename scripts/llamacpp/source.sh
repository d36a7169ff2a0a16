#!/usr/bin/env bash
# Fetches llama.cpp's full source as the llama-cpp-python sdist on PyPI vendors it (the hubs
# and GitHub are out of reach here), checks its sha256 and unpacks it once.
# Prints the llama.cpp source directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"   # vendors llama.cpp of 2026-10-01 (commit 0c1e570)
sha256="${LLAMA_CPP_PYTHON_SHA256:-832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e}"
dest="$root/.cache/llama.cpp/llama_cpp_python-$version"
src="$dest/vendor/llama.cpp"
if [ ! -f "$src/CMakeLists.txt" ]; then
    mkdir -p "$root/.cache/llama.cpp"
    tarball="$root/.cache/llama.cpp/llama_cpp_python-$version.tar.gz"
    if [ ! -f "$tarball" ]; then
        meta="https://pypi.org/pypi/llama-cpp-python/json"
        url=$(curl -fsSL "$meta" | python3 -c '
import json, sys, urllib.parse
for u in json.load(sys.stdin)["releases"].get(sys.argv[2], []):
    if u["packagetype"] == "sdist": print(urllib.parse.urljoin(sys.argv[1], u["url"]))' "$meta" "$version")
        [ -n "$url" ] || { echo "error: PyPI lists no sdist for llama-cpp-python $version" >&2; exit 1; }
        curl -fsSL -o "$tarball.part" "$url"
        mv "$tarball.part" "$tarball"
    fi
    echo "$sha256  $tarball" | sha256sum -c --quiet - || { echo "error: $tarball does not have the pinned sha256" >&2; exit 1; }
    tar -xzf "$tarball" -C "$root/.cache/llama.cpp"
fi
echo "$src"
