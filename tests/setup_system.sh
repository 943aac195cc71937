#!/usr/bin/env bash
# What the tests need beyond the Python packages: Chromium for the playground test, PostgreSQL's server binaries
# (tests/pg.py starts throwaway clusters from them, so the PostgreSQL cases run instead of skipping), and the
# official JS client. Idempotent; called by `make test` (and so by CI on a clean machine).
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Debian's server package; its binaries live in /usr/lib/postgresql/<major>/bin (tests/pg.py looks there).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  # The package would start a cluster of its own at install: the tests need none (policy-rc.d says no).
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -z "$own_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

# The JS client, pinned by tests/js/package-lock.json.
(cd js && npm ci --no-audit --no-fund --loglevel=error)
