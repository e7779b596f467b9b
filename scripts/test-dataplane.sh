#!/usr/bin/env bash
# Tier 3: the local data plane with real packets (root: namespaces, haproxy, keepalived, nftables).
# Sets up what it needs, then runs the tests marked `dataplane`. With CI=true nothing may skip: a missing
# prerequisite fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-dataplane.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "test-dataplane: needs root" >&2
  exit 1
fi
args=(-q -p no:cacheprovider -m dataplane tests/dataplane)
if [ "${CI:-}" = "true" ]; then
  args+=(-rs)  # show why, should anything skip; the fixtures fail instead of skipping under CI
fi
exec .venv/bin/python -m pytest "${args[@]}"
