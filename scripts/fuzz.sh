#!/usr/bin/env bash
# Runs Fovea's libFuzzer targets (Fuzz/, over FoveaFuzzing) with AddressSanitizer.
#
#   bash scripts/fuzz.sh [--runs N] [--time SECONDS] [TARGET...]
#
# Defaults: every target, stopping at 1,000,000 executions or 30 minutes, whichever comes first.
# Seeds come from Tests/Corpus/fuzz/<target>; new coverage goes to .cache/fuzz/<target>; a crash,
# leak, timeout or OOM is written as Tests/Corpus/fuzz/<target>/{crash,leak,timeout,oom}-<hash> — fix it, keep it, and
# the tests replay it for good. Each target's last libFuzzer lines land in .cache/fuzz/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=1000000 time=1800 targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --time) time=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(safetensors gguf config preprocessor tokenizer-json tokenize image chat spec chat-request)

(cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
    -Xcc -fsanitize=fuzzer-no-link,address)
exe=Fuzz/.build/release/fovea-fuzz
for t in "${targets[@]}"; do
    mkdir -p ".cache/fuzz/$t"
    echo "== $t: up to $runs runs or $time s"
    # max_len fits the largest seed (a 96 KB tokenizer.json); rss_limit catches unbounded memory.
    FOVEA_FUZZ_TARGET=$t "$exe" ".cache/fuzz/$t" "Tests/Corpus/fuzz/$t" -runs="$runs" -max_total_time="$time" \
        -max_len=131072 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="Tests/Corpus/fuzz/$t/" \
        -print_final_stats=1 > ".cache/fuzz/$t.log" 2>&1 || echo "   $t stopped: see .cache/fuzz/$t.log"
    grep -E "^(#[0-9]+\s+DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" ".cache/fuzz/$t.log" | sed 's/^/   /' || true
done
