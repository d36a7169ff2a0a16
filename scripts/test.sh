#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test: the Swift suites (no
# Python), then the server driven by the `openai` Python package (Tests/clients/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Kernels optimised in the debug build (Package.swift says why this is a variable).
export FOVEA_OPTIMISED_DEBUG=1
swift build --build-tests
swift test --skip-build --disable-xctest
py=.cache/venv/bin/python
[ -x "$py" ] || python3 -m venv .cache/venv
if "$py" -c "import openai" 2>/dev/null || "$py" -m pip install -q "openai==3.63.0"; then
    "$py" Tests/clients/openai_client.py --fovea .build/debug/fovea
    # A bounded load on loopback: 40 requests from 4 clients, under two minutes.
    "$py" Tests/clients/load.py --fovea .build/debug/fovea --requests 40 --concurrency 4 --time-limit 120
else
    echo "warning: could not install the openai package from PyPI; the OpenAI-client tests were not run" >&2
fi
