#!/usr/bin/env bash
# Tier 2 setup on a fresh Debian 12 machine as root: MariaDB, RabbitMQ, and a separate venv with the real
# Octavia and Neutron API servers (pinned in scripts/openstack-constraints.txt). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
STACK_DIR=${LBSWAP_STACK_DIR:-/opt/lbswap-stack}
mapfile -t need < <(apt_missing mariadb-server rabbitmq-server openssl curl python3-venv)
apt_install "${need[@]}"
mkdir -p "$STACK_DIR"
if [ ! -x "$STACK_DIR/venv/bin/python" ]; then
  python3 -m venv "$STACK_DIR/venv"
fi
stamp="$STACK_DIR/venv/.constraints-$(sha256sum scripts/openstack-constraints.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$STACK_DIR/venv/bin/python" -m pip install -q --upgrade pip
  "$STACK_DIR/venv/bin/python" -m pip install -q -c scripts/openstack-constraints.txt \
    octavia neutron pymysql gunicorn
  touch "$stamp"
fi
echo "setup-openstack: MariaDB, RabbitMQ and $STACK_DIR/venv ready"
