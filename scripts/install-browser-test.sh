#!/usr/bin/env bash
# Installs what the chat-page browser test (tests/web, CTest "web_chat_page") needs: Debian's chromium and
# Node.js (no npm packages: the test speaks the DevTools protocol over a pipe). Without them the test skips.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
chromium --version
node --version
