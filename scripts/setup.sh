#!/usr/bin/env bash
# Install the Debian packages idefics.cpp needs, then build it (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $(cat .ci/packages.txt)
cmake --preset release
cmake --build --preset release -j "$(nproc)"
echo "built: build/release/idefics"
