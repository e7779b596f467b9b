#!/usr/bin/env bash
# The local cloud's test: set up (idempotent), bring the cloud up, run the tests marked `localcloud` against it
# (real Octavia with namespace amphorae: create, serve at the VIP, ONLINE from heartbeats, failover, cascade
# delete; a floating IP served by Neutron's L3 agent and moved between two load balancers under new connections;
# lbswap's own fip-swap through the openstack backend, run and killed-then-resumed, under new connections, the
# run's long-lived streams drained on Octavia's statistics; an ACTIVE_STANDBY TCP load balancer swapped too),
# bring it down whatever happens, and check that `down` left nothing. Prints timings and memory.
# LBSWAP_PYTHON: the Python that runs the tests (default .venv/bin/python); this checkout's src comes first.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${LBSWAP_LOCALCLOUD_DIR:-/opt/lbswap-localcloud}
PY=${LBSWAP_PYTHON:-.venv/bin/python}
[ -n "${LBSWAP_PYTHON:-}" ] || [ -x .venv/bin/python ] || bash scripts/setup.sh
bash scripts/setup-localcloud.sh

leftovers() { # what `down` must not leave: namespaces, links, cgroup, Open vSwitch, databases, vhost, processes
  local left=()
  local ns
  ns=$(ip netns list | grep -E '^(lc(amp|m|c|x)|qrouter)-' | tr '\n' ' ' || true)
  [ -n "$ns" ] && left+=("namespaces: $ns")
  ip -o link show | awk -F': ' '{print $2}' | grep -qE '^(lc[bpx][0-9a-f]{11}|lcbr-|lcmgmt|ovs-netdev)' && left+=("links")
  [ -e "$DIR/run/ovs" ] && left+=("Open vSwitch database")
  pgrep -f "^ovs(db-server|-vswitchd) .*$DIR/run/ovs/" >/dev/null && left+=("Open vSwitch daemons")
  pgrep -f 'neutron-(openvswitch|l3)-agent' >/dev/null && left+=("agents") # privsep daemons: the $DIR/run/ check
  [ -d "$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)/lbswap-localcloud" ] && left+=("cgroup")
  mysql -N -e "SHOW DATABASES LIKE 'lc\\_%'" 2>/dev/null | grep -q . && left+=("databases")
  rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx lbswap-localcloud && left+=("vhost")
  pgrep -f "$DIR/run/" >/dev/null && left+=("processes: $(pgrep -f "$DIR/run/" | tr '\n' ' ')")
  pgrep -f amphora-agent >/dev/null && left+=("amphora agents")
  ((${#left[@]} == 0)) || { echo "test-localcloud: down left ${left[*]}" >&2; return 1; }
}

finish() {
  local rc=$? t=$SECONDS
  bash scripts/local-cloud.sh down || rc=1
  echo "test-localcloud: down in $((SECONDS - t)) s" >&2
  leftovers || rc=1
  exit $rc
}
trap finish EXIT
t=$SECONDS
bash scripts/local-cloud.sh up
echo "test-localcloud: up in $((SECONDS - t)) s" >&2
export OS_CLIENT_CONFIG_FILE="$DIR/clouds.yaml" LBSWAP_LOCALCLOUD_DIR="$DIR" PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m pytest -q -s -p no:cacheprovider -m localcloud tests/localcloud "$@"
