#!/usr/bin/env bash
# with-tls-redis.sh PORT DIR COMMAND...: run COMMAND beside a TLS-only redis-server on 127.0.0.1:PORT (for
# rediss:// jobboards; scripts/test-scaleout.sh calls it). In DIR/tls (made, mode 0700): a throwaway CA and a
# server certificate for 127.0.0.1 made with openssl, a second CA that signed nothing (the "wrong CA" of the
# tests), and a password in a file of mode 0600 that reaches redis-server through its config file, never a
# command line. The plain port is off (port 0) and clients need no certificate of their own. COMMAND sees
# LBSWAP_TEST_REDISS_PORT, LBSWAP_TEST_REDISS_PASSWORD_FILE, LBSWAP_TEST_REDISS_CA_FILE and
# LBSWAP_TEST_REDISS_OTHER_CA_FILE; the server is stopped by its pid and DIR/tls removed on exit. Exits with
# COMMAND's status.
set -euo pipefail
if [ "$#" -lt 3 ]; then
  echo "usage: with-tls-redis.sh PORT DIR COMMAND..." >&2
  exit 2
fi
port=$1 dir=$2/tls
shift 2
tls_pid=""
stop_tls_redis() {
  if [ -n "$tls_pid" ] && kill -0 "$tls_pid" 2>/dev/null; then
    kill "$tls_pid" 2>/dev/null || true # it may have ended since
    wait "$tls_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop_tls_redis EXIT
umask 077
mkdir "$dir"
ca() { openssl req -new -x509 -days 2 -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$dir/$2.key" -out "$dir/$2.crt"; }
{
  ca "lbswap test CA" ca
  ca "lbswap test other CA" other-ca
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr"
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  openssl x509 -req -days 2 -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -extfile "$dir/server.ext" -out "$dir/server.crt"
} >"$dir/openssl.log" 2>&1 || { echo "with-tls-redis: openssl failed:" >&2; cat "$dir/openssl.log" >&2; exit 1; }
rm "$dir/ca.key" "$dir/other-ca.key"  # nothing else is ever signed with them
openssl rand -hex 24 >"$dir/password"
{
  echo "bind 127.0.0.1"
  echo "port 0"
  echo "tls-port $port"
  echo "tls-cert-file $dir/server.crt"
  echo "tls-key-file $dir/server.key"
  echo "tls-ca-cert-file $dir/ca.crt"
  echo "tls-auth-clients no"
  echo "dir $dir"
  echo "save \"\""
  echo "appendonly no"
  echo "daemonize no"
  echo "requirepass $(cat "$dir/password")"
} >"$dir/redis.conf"
redis-server "$dir/redis.conf" >"$dir/redis.log" 2>&1 &
tls_pid=$!
for i in $(seq 50); do
  if REDISCLI_AUTH=$(cat "$dir/password") redis-cli --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$port" ping \
    2>/dev/null | grep -q PONG; then
    break
  fi
  if ! kill -0 "$tls_pid" 2>/dev/null || [ "$i" = 50 ]; then
    echo "with-tls-redis: redis-server did not start:" >&2
    cat "$dir/redis.log" >&2
    exit 1
  fi
  sleep 0.1
done
export LBSWAP_TEST_REDISS_PORT=$port LBSWAP_TEST_REDISS_PASSWORD_FILE=$dir/password
export LBSWAP_TEST_REDISS_CA_FILE=$dir/ca.crt LBSWAP_TEST_REDISS_OTHER_CA_FILE=$dir/other-ca.crt
status=0
"$@" || status=$?
exit "$status"
