#!/usr/bin/env bash
# Tier 3: the local data plane with real packets (root: namespaces, haproxy, keepalived, nftables).
# Sets up what it needs, then runs the tests marked `dataplane`. With CI=true nothing may skip: a missing
# prerequisite fails the run. A namespace or run directory the run created and left behind fails it too
# (every test also checks its own cloud right after `down`; this catches what outlives a test).
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
footprint() {
  # (no /run/lbswap yet on a fresh machine: ls fails, and under pipefail that must not end the script)
  { ip netns list | awk '{print "namespace " $1}'; { ls /run/lbswap 2>/dev/null || true; } | sed 's|^|directory /run/lbswap/|'; } \
    | sort
}
before=$(footprint)
status=0
.venv/bin/python -m pytest "${args[@]}" || status=$?
left=$(comm -13 <(echo "$before") <(footprint))
if [ -n "$left" ]; then
  echo "test-dataplane: the run left behind: $(echo "$left" | paste -sd, -)" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
