#!/usr/bin/env bash
# Installs what the embedding tests need: onnxruntime-node/-web (npm, pinned in tests/embed/npm) and headless
# Chromium (Debian). Idempotent; where something cannot be installed it says why and the tests skip with that reason.
set -u
cd "$(dirname "$0")/.."
dir=tests/embed/npm
if command -v npm >/dev/null 2>&1; then
  if [ ! -d "$dir/node_modules/onnxruntime-node" ] || [ ! -d "$dir/node_modules/onnxruntime-web" ]; then
    # onnxruntime-node's postinstall would download CUDA binaries; the CPU binary ships in the package.
    (cd "$dir" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --silent >/dev/null 2>&1) \
      || echo "embed-deps: npm ci failed; the node/web embedding tests will skip"
  fi
else
  echo "embed-deps: npm not found; the node/web embedding tests will skip"
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
      || echo "embed-deps: apt-get install chromium failed; the browser test will skip"
  else
    echo "embed-deps: chromium missing and apt-get unavailable (not root); the browser test will skip"
  fi
fi
exit 0
