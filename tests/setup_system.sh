#!/usr/bin/env bash
# What the tests need beyond the Python packages: Chromium for the playground test, and the official JS client.
# Idempotent; called by `make test` (and so by CI on a clean machine).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# The JS client, pinned by tests/js/package-lock.json.
(cd js && npm ci --no-audit --no-fund --loglevel=error)
