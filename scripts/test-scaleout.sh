#!/usr/bin/env bash
# Scale-out tier: `lbswap conductor` processes on taskflow's Redis jobboard, sharing one journal on MariaDB.
# Starts its own redis-server on 127.0.0.1:${LBSWAP_TEST_REDIS_PORT:-16379} with a password (in a file of
# mode 0600, never on a command line), in a directory of its own, and stops it by pid on exit. MariaDB: the
# running server (started through /etc/init.d, and stopped again, only when it was not running); a database
# user of its own (LBSWAP_TEST_DB_USER, default lbswap_scaleout) with a random password in a file of mode 0600,
# allowed the databases named LBSWAP_TEST_DB_PREFIX_* (default lbswap_scaleout: each test creates one), all
# dropped on exit. Then runs the tests marked `scaleout`. LBSWAP_SKIP_SETUP=1 skips the setup scripts;
# LBSWAP_PYTHON names the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LBSWAP_SKIP_SETUP:-}" != "1" ]; then
  bash scripts/setup.sh
  bash scripts/setup-scaleout.sh
fi
python=${LBSWAP_PYTHON:-.venv/bin/python}
port=${LBSWAP_TEST_REDIS_PORT:-16379}
db_user=${LBSWAP_TEST_DB_USER:-lbswap_scaleout}
db_prefix=${LBSWAP_TEST_DB_PREFIX:-lbswap_scaleout}
case "$db_user$db_prefix" in
  *[!A-Za-z0-9_]*) echo "test-scaleout: LBSWAP_TEST_DB_USER and LBSWAP_TEST_DB_PREFIX: letters, digits, _" >&2; exit 2 ;;
esac
dir=$(mktemp -d /tmp/lbswap-scaleout.XXXXXX)
chmod 700 "$dir"
pid=""
started_mariadb=0
made_user=0
drop_databases() {
  mysql -N -e "SHOW DATABASES" | { grep "^${db_prefix}_" || true; } | while read -r name; do
    mysql -e "DROP DATABASE IF EXISTS \`$name\`"
  done
}
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$made_user" = 1 ]; then
    drop_databases || echo "test-scaleout: could not drop the databases ${db_prefix}_*" >&2
    mysql -e "DROP USER IF EXISTS '$db_user'@'localhost', '$db_user'@'127.0.0.1'" \
      || echo "test-scaleout: could not drop the user $db_user" >&2
  fi
  if [ "$started_mariadb" = 1 ]; then
    /etc/init.d/mariadb stop >/dev/null 2>&1 || echo "test-scaleout: could not stop MariaDB" >&2
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
umask 077
"$python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/password"
"$python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/db-password"
# the password reaches redis-server through its config file, not its command line (the process list)
{
  echo "bind 127.0.0.1"
  echo "port $port"
  echo "dir $dir"
  echo "save \"\""
  echo "appendonly no"
  echo "daemonize no"
  echo "requirepass $(cat "$dir/password")"
} >"$dir/redis.conf"
redis-server "$dir/redis.conf" >"$dir/redis.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/redis.pid"
for _ in $(seq 50); do
  if REDISCLI_AUTH=$(cat "$dir/password") redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { echo "test-scaleout: redis-server did not start:" >&2; cat "$dir/redis.log" >&2; exit 1; }
  sleep 0.1
done
# MariaDB: as tier 2 does (scripts/openstack-stack.sh), through its init script, noting that we started it
if ! mysqladmin ping >/dev/null 2>&1; then
  /etc/init.d/mariadb start >"$dir/mariadb-init.log" 2>&1 \
    || { echo "test-scaleout: could not start MariaDB:" >&2; cat "$dir/mariadb-init.log" >&2; exit 1; }
  started_mariadb=1
  for _ in $(seq 120); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
made_user=1
drop_databases  # left by an interrupted run
# the password reaches MariaDB on mysql's stdin, not on a command line
mysql <<SQL
DROP USER IF EXISTS '$db_user'@'localhost', '$db_user'@'127.0.0.1';
CREATE USER '$db_user'@'localhost' IDENTIFIED BY '$(cat "$dir/db-password")';
CREATE USER '$db_user'@'127.0.0.1' IDENTIFIED BY '$(cat "$dir/db-password")';
GRANT ALL ON \`${db_prefix//_/\\_}\\_%\`.* TO '$db_user'@'localhost';
GRANT ALL ON \`${db_prefix//_/\\_}\\_%\`.* TO '$db_user'@'127.0.0.1';
-- the tests see whether a stopped conductor holds a transaction open (information_schema.innodb_trx)
GRANT PROCESS ON *.* TO '$db_user'@'localhost';
GRANT PROCESS ON *.* TO '$db_user'@'127.0.0.1';
SQL
export LBSWAP_TEST_REDIS_PORT=$port LBSWAP_TEST_REDIS_PASSWORD_FILE=$dir/password
export LBSWAP_TEST_DB_HOST=127.0.0.1 LBSWAP_TEST_DB_PORT=3306 LBSWAP_TEST_DB_USER=$db_user
export LBSWAP_TEST_DB_PREFIX=$db_prefix LBSWAP_TEST_DB_PASSWORD_FILE=$dir/db-password
args=(-q -p no:cacheprovider -m scaleout tests/scaleout)
if [ "${CI:-}" = "true" ]; then
  args+=(-rs)
fi
# beside the plain Redis, a TLS-only one for rediss:// on LBSWAP_TEST_REDISS_PORT (default: the plain port + 10),
# with a throwaway CA (scripts/with-tls-redis.sh: stopped and removed when the tests end)
tls_port=${LBSWAP_TEST_REDISS_PORT:-$((port + 10))}
bash scripts/with-tls-redis.sh "$tls_port" "$dir" "$python" -m pytest "${args[@]}" "$@"
