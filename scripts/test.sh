#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test (no Python, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build --disable-xctest
