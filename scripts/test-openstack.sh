#!/usr/bin/env bash
# Tier 2: install (idempotent) and start the local Octavia and Neutron API servers, run the tests marked
# `openstack` against them, and stop what was started, whatever happens. Fails, never skips, when anything
# is missing (CI=true forbids skips). The tests run inside scripts/test-scaleout.sh, which starts a Redis server
# on a private port (LBSWAP_TEST_REDIS_PORT, default 16379) for the two-conductor test and stops it after.
# LBSWAP_SKIP_SETUP=1 skips the setup scripts; LBSWAP_PYTHON names the interpreter (as in test-scaleout.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_DIR=${LBSWAP_STACK_DIR:-/opt/lbswap-stack}
python=${LBSWAP_PYTHON:-.venv/bin/python}
if [ "${LBSWAP_SKIP_SETUP:-}" != "1" ]; then
  [ -x .venv/bin/python ] || bash scripts/setup.sh
  bash scripts/setup-openstack.sh
  bash scripts/setup-scaleout.sh  # Debian's redis-server and the python redis client, for the jobboard
  # the openstack client, for `openstack loadbalancer upgrade ...` (its entry points come from this install)
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test,osc]'
fi
trap 'bash scripts/openstack-stack.sh stop' EXIT
bash scripts/openstack-stack.sh start
export OS_CLIENT_CONFIG_FILE="$STACK_DIR/clouds.yaml"
# the backend and whole swaps, the plan of a dual-stack load balancer, the openstack client plugin, the verify's
# temporary floating IP (its probes answered without packets), and the Cloud protocol's contract suite (the same
# tests tier 1 runs on the fake), and two `lbswap conductor` processes on a Redis jobboard, one SIGKILLed
TESTS=(tests/clouds/test_openstack.py tests/clouds/test_openstack_plan.py tests/clouds/test_openstack_plugin.py
  tests/clouds/test_openstack_verify.py tests/contract tests/scaleout/test_conductors_openstack.py)
# test-scaleout.sh passes `-m scaleout tests/scaleout` first; the `-m openstack` here comes later and wins, so
# exactly the tests marked openstack run (the two-conductor test is marked openstack only, never scaleout)
LBSWAP_SKIP_SETUP=1 LBSWAP_PYTHON=$python bash scripts/test-scaleout.sh -m openstack "${TESTS[@]}" "$@"
