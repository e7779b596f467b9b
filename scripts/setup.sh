#!/usr/bin/env bash
# Base setup on a fresh Debian machine as root: OS packages, a venv in .venv, lbswap with its test tools.
# Idempotent. Tier-specific setup lives in scripts/setup-openstack.sh and scripts/setup-dataplane.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v git >/dev/null || need+=(git)
apt_install "${need[@]}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
echo "setup: .venv ready ($(.venv/bin/python --version))"
