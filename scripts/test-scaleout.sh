#!/usr/bin/env bash
# Scale-out tier: `lbswap conductor` processes on taskflow's Redis jobboard, sharing one journal.
# Starts its own redis-server on 127.0.0.1:${LBSWAP_TEST_REDIS_PORT:-16379} with a password (in a file of
# mode 0600, never on a command line), in a directory of its own, and stops it by pid on exit; then runs the
# tests marked `scaleout`. LBSWAP_SKIP_SETUP=1 skips the setup scripts; LBSWAP_PYTHON names the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LBSWAP_SKIP_SETUP:-}" != "1" ]; then
  bash scripts/setup.sh
  bash scripts/setup-scaleout.sh
fi
python=${LBSWAP_PYTHON:-.venv/bin/python}
port=${LBSWAP_TEST_REDIS_PORT:-16379}
dir=$(mktemp -d /tmp/lbswap-scaleout.XXXXXX)
chmod 700 "$dir"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
umask 077
"$python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/password"
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
export LBSWAP_TEST_REDIS_PORT=$port LBSWAP_TEST_REDIS_PASSWORD_FILE=$dir/password
args=(-q -p no:cacheprovider -m scaleout tests/scaleout)
if [ "${CI:-}" = "true" ]; then
  args+=(-rs)
fi
"$python" -m pytest "${args[@]}" "$@"
