#!/usr/bin/env bash
# CTest entry of the chat-page browser test: starts `idefics serve` on the tiny golden model (loopback, any free
# port), then runs chat_page_test.mjs in Node against headless Chromium. Exits 77 (skipped) when Node or
# Chromium is missing (scripts/install-browser-test.sh installs them).
#   run_browser_test.sh IDEFICS_BIN MODEL_DIR IMAGE [SCREENSHOT.png]
set -uo pipefail
bin=$1 model=$2 image=$3 shot=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if ! command -v node >/dev/null || [ -z "$chromium" ]; then
  echo "SKIP: the browser test needs node and chromium (scripts/install-browser-test.sh)"
  exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "SKIP: node $major is too old (18+ has fetch)"
  exit 77
fi
log=$(mktemp)
"$bin" serve --model "$model" --host 127.0.0.1 --port 0 --parallel 2 --threads 1 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "FAIL: the server did not start"; cat "$log"; exit 1
fi
CHROMIUM=$chromium timeout 150 node "$here/chat_page_test.mjs" "http://127.0.0.1:$port" "$image" $shot
rc=$?
[ $rc -ne 0 ] && tail -20 "$log"
exit $rc
