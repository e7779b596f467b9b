#!/usr/bin/env bash
# Setup of the local cloud (scripts/local-cloud.sh) on a fresh Debian 12 machine as root: what tier 2 installs
# (MariaDB, RabbitMQ, the virtualenv with Octavia and Neutron: scripts/setup-openstack.sh; Octavia's amphora
# agent and its dependencies come with it) plus what an amphora image would carry: haproxy, and the tools the
# compute driver uses (iproute2, util-linux's unshare, curl, socat standing for the image's rsyslog); and for
# Neutron's agents: Open vSwitch (started by local-cloud.sh itself, not as a system service), ethtool (checksum
# offload off on veths), iptables (the L3 agent's NAT, nft backend) and conntrack. gunicorn, which serves the
# Neutron and Octavia APIs, is in the stack's virtualenv (scripts/setup-openstack.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
bash scripts/setup-openstack.sh
mapfile -t need < <(apt_missing haproxy keepalived iproute2 util-linux curl openssl socat openvswitch-switch ethtool \
  iptables conntrack)
apt_install "${need[@]}"
# the agent must not import a dependency the pins do not cover
VENV="${LBSWAP_STACK_DIR:-/opt/lbswap-stack}/venv"
"$VENV/bin/python" -c 'import octavia.cmd.agent, pyroute2, flask, gunicorn' 2>/dev/null \
  || { echo "setup-localcloud: the amphora agent cannot be imported from the stack's venv" >&2; exit 1; }
echo "setup-localcloud: ready (haproxy $(dpkg-query -W -f='${Version}' haproxy))"
