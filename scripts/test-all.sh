#!/usr/bin/env bash
# Set everything up and run every check and every test tier; what .ci/run calls.
# In CI (CI=true) no tier may skip: a missing dependency fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
status=0
step() { echo; echo "== $*"; }

step "lint"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
step "types (mypy strict)"
.venv/bin/mypy

step "tier 1: unit, fake-backend workflow, crash and fault sweeps"
$PY -m pytest -q -p no:cacheprovider tests || status=$?

if [ -f scripts/test-openstack.sh ]; then
  step "tier 2: openstack backend against real Octavia and Neutron APIs"
  bash scripts/test-openstack.sh || status=$?
fi
if [ -f scripts/test-dataplane.sh ]; then
  step "tier 3: local data plane with real packets"
  bash scripts/test-dataplane.sh || status=$?
fi
step "scale-out: conductors on a Redis jobboard sharing one journal"
bash scripts/test-scaleout.sh || status=$?
step "local cloud: real Octavia and Neutron with amphora agents in namespaces"
bash scripts/test-localcloud.sh || status=$?

step "result"
if [ "$status" -ne 0 ]; then
  echo "FAILED (exit $status)"
else
  echo "all tiers passed"
fi
exit "$status"
