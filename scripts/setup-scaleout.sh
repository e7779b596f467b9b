#!/usr/bin/env bash
# Scale-out tier setup on a Debian 12 machine as root: redis-server (never started as a service: the tests
# start their own on a private port) and the python redis client (the `scaleout` extra) in .venv.
# Idempotent; run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -y -q -o DPkg::Lock::Timeout=600"
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-scaleout: installing redis-server needs root" >&2
    exit 1
  fi
  # the package's postinst must not start a redis service (it would hold port 6379)
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  $APT update
  $APT install --no-install-recommends redis-server
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
fi
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test,scaleout]'
echo "setup-scaleout: $(redis-server --version | cut -d' ' -f1-3), python redis $(.venv/bin/python -c 'import redis; print(redis.__version__)')"
