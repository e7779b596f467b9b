#!/usr/bin/env bash
# Tier 3 / demo setup on a fresh Debian 12 machine as root: the packages the local data plane runs on
# (haproxy, nftables, iproute2, conntrack, keepalived, arping) and the lab extra (matplotlib: the timeline).
# Idempotent. haproxy and keepalived are never started as services: lbswap runs them per namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-dataplane: needs root (network namespaces, nftables)" >&2
  exit 1
fi
mapfile -t need < <(apt_missing haproxy nftables iproute2 conntrack keepalived iputils-arping procps kmod)
apt_install --no-start "${need[@]}" # their postinst scripts must not start haproxy/keepalived as services
# a service started anyway by a package script (no systemd here, but be sure) must not hold ports
for svc in haproxy keepalived; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
    systemctl disable "$svc" 2>/dev/null || true
  fi
done
if [ -x .venv/bin/python ]; then
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test,lab]'  # lab: matplotlib, the demo's timeline
fi
for tool in haproxy nft ip conntrack keepalived arping; do
  command -v "$tool" >/dev/null || { echo "setup-dataplane: $tool missing after install" >&2; exit 1; }
done
echo "setup-dataplane: haproxy $(haproxy -v | head -1 | awk '{print $3}'), nftables, conntrack, keepalived ready"
