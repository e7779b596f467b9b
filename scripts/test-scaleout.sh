#!/usr/bin/env bash
# Scale-out tier: `lbswap conductor` processes on taskflow's Redis jobboard, sharing one journal on MariaDB or on
# PostgreSQL.
# Starts its own redis-server on 127.0.0.1:${LBSWAP_TEST_REDIS_PORT:-16379} with a password (in a file of
# mode 0600, never on a command line), in a directory of its own, and stops it by pid on exit. MariaDB: the
# running server (started through /etc/init.d, and stopped again, only when it was not running); a database
# user of its own (LBSWAP_TEST_DB_USER, default lbswap_scaleout) with a random password in a file of mode 0600,
# allowed the databases named LBSWAP_TEST_DB_PREFIX_* (default lbswap_scaleout: each test creates one), all
# dropped on exit. PostgreSQL: a cluster of its own (initdb and pg_ctl as the postgres user: initdb refuses root)
# in a temporary directory, on 127.0.0.1:${LBSWAP_TEST_PG_PORT:-redis's port + 1000}, with the same user name and a
# random password of its own (a file of mode 0600), stopped and removed on exit; the system's cluster is never
# touched. Without PostgreSQL (LBSWAP_TEST_PG_BIN, default the newest /usr/lib/postgresql/*/bin) its tests skip,
# unless CI=true, where the script fails. Then runs the tests marked `scaleout`. LBSWAP_SKIP_SETUP=1 skips the
# setup scripts; LBSWAP_PYTHON names the interpreter.
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
pg_port=${LBSWAP_TEST_PG_PORT:-$((port + 1000))}
pg_bin=${LBSWAP_TEST_PG_BIN:-$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n1 || true)}
dir=$(mktemp -d /tmp/lbswap-scaleout.XXXXXX)
chmod 700 "$dir"
pid=""
started_mariadb=0
made_user=0
pg_dir=""
pg_started=0
# initdb refuses root: the cluster belongs to the postgres user then (its superuser: whoever runs initdb)
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  pg_super=postgres
else
  as_pg=()
  pg_super=$(id -un)
fi
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
  if [ "$pg_started" = 1 ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 \
      || echo "test-scaleout: could not stop the PostgreSQL cluster in $pg_dir" >&2
  fi
  if [ -n "$pg_dir" ]; then rm -rf "$pg_dir"; fi
  rm -rf "$dir"
}
trap cleanup EXIT
umask 077
"$python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/password"
"$python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/db-password"
"$python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/pg-password"
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
# PostgreSQL: a cluster of its own, in a directory of its own (the postgres user's, mode 0700)
if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
  pg_dir=$(mktemp -d /tmp/lbswap-scaleout-pg.XXXXXX)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pg_dir"; fi
  chmod 700 "$pg_dir"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U "$pg_super" --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { echo "test-scaleout: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
  # a throwaway cluster: no fsync
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $pg_port"
    echo "unix_socket_directories = '$pg_dir'"
    echo "max_connections = 200"
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
  } | "${as_pg[@]}" tee -a "$pg_dir/data/postgresql.conf" >/dev/null
  pg_started=1 # before the start: a server that comes up after pg_ctl's 60 s must still be stopped by cleanup
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 start >/dev/null 2>&1 \
    || { echo "test-scaleout: PostgreSQL did not start on port $pg_port:" >&2; cat "$pg_dir/server.log" >&2; exit 1; }
  # the password reaches PostgreSQL on psql's stdin, not on a command line
  "${as_pg[@]}" "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_dir" -p "$pg_port" -U "$pg_super" -d postgres <<SQL
CREATE ROLE $db_user LOGIN CREATEDB PASSWORD '$(cat "$dir/pg-password")';
SQL
  export LBSWAP_TEST_PG_HOST=127.0.0.1 LBSWAP_TEST_PG_PORT=$pg_port LBSWAP_TEST_PG_USER=$db_user
  export LBSWAP_TEST_PG_PASSWORD_FILE=$dir/pg-password
elif [ "${CI:-}" = "true" ]; then
  echo "test-scaleout: no PostgreSQL (${pg_bin:-/usr/lib/postgresql/*/bin}/initdb): scripts/setup-scaleout.sh installs it" >&2
  exit 1
else
  echo "test-scaleout: no PostgreSQL (${pg_bin:-/usr/lib/postgresql/*/bin}/initdb): its tests skip" >&2
fi
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
