#!/usr/bin/env bash
# Configure, build and run every test (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
ctest --preset release
