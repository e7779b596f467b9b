#!/usr/bin/env bash
# Tier 2: install (idempotent) and start the local Octavia and Neutron API servers, run the tests marked
# `openstack` against them, and stop what was started, whatever happens. Fails, never skips, when anything
# is missing (CI=true forbids skips).
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_DIR=${LBSWAP_STACK_DIR:-/opt/lbswap-stack}
[ -x .venv/bin/python ] || bash scripts/setup.sh
bash scripts/setup-openstack.sh
# the openstack client, for `openstack loadbalancer upgrade ...` (its entry points come from this install)
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test,osc]'
trap 'bash scripts/openstack-stack.sh stop' EXIT
bash scripts/openstack-stack.sh start
export OS_CLIENT_CONFIG_FILE="$STACK_DIR/clouds.yaml"
# the backend and whole swaps, the plan of a dual-stack load balancer, the openstack client plugin, the verify's
# temporary floating IP (its probes answered without packets), and the Cloud protocol's contract suite (the same
# tests tier 1 runs on the fake)
TESTS=(tests/clouds/test_openstack.py tests/clouds/test_openstack_plan.py tests/clouds/test_openstack_plugin.py
  tests/clouds/test_openstack_verify.py tests/contract)
.venv/bin/python -m pytest -q -p no:cacheprovider -m openstack "${TESTS[@]}" "$@"
