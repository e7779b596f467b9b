#!/usr/bin/env bash
# Scale-out tier setup on a Debian 12 machine as root: redis-server (never started as a service: the tests
# start their own on a private port), mariadb-server for the shared journal (not started here: the test
# script starts it through its init script when it is not running, as tier 2 does, and stops it only then),
# postgresql for the journal on PostgreSQL (its service never started: the test script runs a cluster of its own
# in a temporary directory), and the python redis, MySQL and PostgreSQL clients (the `scaleout` extra) in .venv.
# Idempotent; run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)  # the throwaway CA of the TLS Redis (scripts/with-tls-redis.sh)
dpkg-query -W -f='${Status}' mariadb-server 2>/dev/null | grep -q 'install ok installed' || need+=(mariadb-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# their postinst must not start their services (redis would hold port 6379, PostgreSQL 5432)
apt_install --no-start "${need[@]}"
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test,scaleout]'
echo "setup-scaleout: $(redis-server --version | cut -d' ' -f1-3), $(mysqld --version 2>/dev/null | cut -d' ' -f2-4)," \
  "python redis $(.venv/bin/python -c 'import redis; print(redis.__version__)')," \
  "pymysql $(.venv/bin/python -c 'import pymysql; print(pymysql.__version__)')," \
  "$("$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n1)/postgres" --version)," \
  "psycopg $(.venv/bin/python -c 'import psycopg; print(psycopg.__version__, psycopg.pq.__impl__)')"
