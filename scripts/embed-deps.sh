#!/usr/bin/env bash
# Installs what the embedding tests need: onnxruntime-node/-web (npm) and headless Chromium (Debian).
# Idempotent; prints why where something cannot be installed (the tests then skip with that reason).
set -u
cd "$(dirname "$0")/.."
dir=tests/embed/node_modules_cache
if command -v npm >/dev/null 2>&1; then
  if [ ! -d "$dir/node_modules/onnxruntime-node" ] || [ ! -d "$dir/node_modules/onnxruntime-web" ]; then
    mkdir -p "$dir"
    (cd "$dir" && [ -f package.json ] || echo '{"private": true}' > package.json
     ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent onnxruntime-node@1.30.0 onnxruntime-web@1.30.0 >/dev/null 2>&1) \
      || echo "embed-deps: npm install failed; node/web embedding tests will skip"
  fi
else
  echo "embed-deps: npm not found; node/web embedding tests will skip"
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "embed-deps: apt-get install chromium failed; the browser test will skip"
  else
    echo "embed-deps: chromium missing and apt-get unavailable; the browser test will skip"
  fi
fi
exit 0
