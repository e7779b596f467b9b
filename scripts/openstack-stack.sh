#!/usr/bin/env bash
# Start or stop real Octavia and Neutron API servers on 127.0.0.1 for tier 2 (noop amphora/compute drivers,
# no Keystone): MariaDB and RabbitMQ, Neutron API (gunicorn :9696), Octavia API (gunicorn :9876) and
# octavia-worker. `start` writes a clouds.yaml with the cloud `lbswap-test` to $STACK_DIR/clouds.yaml
# (export OS_CLIENT_CONFIG_FILE=that path). `stop` ends only what `start` started, by recorded pid.
# Every database is created afresh at start. Needs scripts/setup-openstack.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_DIR=${LBSWAP_STACK_DIR:-/opt/lbswap-stack}
RUN="$STACK_DIR/run"
VENV="$STACK_DIR/venv"
DB_PASS=lbswap-stack   # a throwaway password for a database on 127.0.0.1 only

log() { echo "openstack-stack: $*" >&2; }
die() { log "$*"; exit 1; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up in time (logs in $RUN)"
    sleep 0.5
  done
}

write_configs() {
  mkdir -p "$RUN/certs" "$RUN/locks" "$RUN/state"
  if [ ! -f "$RUN/certs/ca.key" ]; then  # the amphora flow wants a CA even with noop drivers
    openssl req -x509 -newkey rsa:2048 -days 365 -subj /CN=lbswap-test-ca -passout pass:lbswap \
      -keyout "$RUN/certs/ca.key" -out "$RUN/certs/ca.pem" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -days 365 -nodes -subj /CN=lbswap-test-client \
      -keyout "$RUN/certs/client.key" -out "$RUN/certs/client.crt" 2>/dev/null
    cat "$RUN/certs/client.crt" "$RUN/certs/client.key" >"$RUN/certs/client.pem"
  fi
  cp "$VENV/etc/neutron/api-paste.ini" "$RUN/api-paste.ini"
  cat >"$RUN/neutron.conf" <<CONF
[DEFAULT]
auth_strategy = noauth
core_plugin = ml2
service_plugins = router,network_ip_availability
transport_url = rabbit://guest:guest@127.0.0.1:5672/
api_paste_config = $RUN/api-paste.ini
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false
state_path = $RUN/state
[database]
connection = mysql+pymysql://lbswap:$DB_PASS@127.0.0.1/neutron
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vxlan]
vni_ranges = 1:1000
[oslo_concurrency]
lock_path = $RUN/locks
CONF
  cat >"$RUN/octavia.conf" <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/
[api_settings]
auth_strategy = noauth
bind_host = 127.0.0.1
[database]
connection = mysql+pymysql://lbswap:$DB_PASS@127.0.0.1/octavia
[controller_worker]
amphora_driver = amphora_noop_driver
compute_driver = compute_noop_driver
volume_driver = volume_noop_driver
image_driver = image_noop_driver
network_driver = allowed_address_pairs_driver
amp_boot_network_list = 6a1e2b33-9a4c-4d3b-8e1b-0c5f7f0a1b11
amp_flavor_id = 1
amp_image_tag = amphora
amp_secgroup_list = 5b2c1d44-7e3f-4a2b-9c8d-1e2f3a4b5c66
client_ca = $RUN/certs/ca.pem
[task_flow]
jobboard_enabled = false
[certificates]
ca_certificate = $RUN/certs/ca.pem
ca_private_key = $RUN/certs/ca.key
ca_private_key_passphrase = lbswap
[haproxy_amphora]
server_ca = $RUN/certs/ca.pem
client_cert = $RUN/certs/client.pem
[neutron]
auth_type = lbswap_noauth
endpoint_override = http://127.0.0.1:9696
[oslo_concurrency]
lock_path = $RUN/locks
CONF
  # the worker runs the noop network driver: the real one fails with noop compute (PlugVIPException)
  printf '[controller_worker]\nnetwork_driver = network_noop_driver\n' >"$RUN/octavia-worker.conf"
  cat >"$RUN/neutron_wsgi.py" <<PY
import sys
sys.argv = ["neutron-api", "--config-file", "$RUN/neutron.conf"]
from neutron.wsgi.api import application  # noqa: E402,F401
PY
  cat >"$RUN/octavia_wsgi.py" <<PY
import sys
sys.argv = ["octavia-api", "--config-file", "$RUN/octavia.conf"]
from octavia.wsgi.api import application  # noqa: E402,F401
PY
  install_noauth_plugin
  cat >"$STACK_DIR/clouds.yaml" <<YAML
clouds:
  lbswap-test:
    auth_type: none
    network_endpoint_override: http://127.0.0.1:9696
    load_balancer_endpoint_override: http://127.0.0.1:9876
YAML
}

install_noauth_plugin() {
  # Octavia's own [neutron] endpoint option collides with keystoneauth's `none` loader ("duplicate option:
  # endpoint"): register keystoneauth's NoAuth under another name, with no options at all.
  local site
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cat >"$site/lbswap_stack_noauth.py" <<'PY'
from keystoneauth1 import loading, noauth


class NoAuthLoader(loading.BaseLoader):
    @property
    def plugin_class(self):
        return noauth.NoAuth

    def get_options(self):
        return []
PY
  mkdir -p "$site/lbswap_stack_noauth-1.0.dist-info"
  printf 'Metadata-Version: 2.1\nName: lbswap-stack-noauth\nVersion: 1.0\n' \
    >"$site/lbswap_stack_noauth-1.0.dist-info/METADATA"
  printf '[keystoneauth1.plugin]\nlbswap_noauth = lbswap_stack_noauth:NoAuthLoader\n' \
    >"$site/lbswap_stack_noauth-1.0.dist-info/entry_points.txt"
}

start_service() {  # start_service NAME: MariaDB or RabbitMQ through its init script, noting that we did
  local name=$1 check=$2
  if ! eval "$check" >/dev/null 2>&1; then
    "/etc/init.d/$name" start >"$RUN/$name-init.log" 2>&1 || die "could not start $name ($RUN/$name-init.log)"
    touch "$RUN/started-$name"
  fi
}

spawn() {  # spawn NAME COMMAND...: in its own session, pid recorded for stop
  local name=$1
  shift
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

start() {
  [ -x "$VENV/bin/octavia-worker" ] || die "no $VENV: run scripts/setup-openstack.sh first"
  if [ -f "$RUN/octavia-worker.pid" ]; then stop; fi
  write_configs
  start_service mariadb "mysqladmin ping"
  start_service rabbitmq-server "rabbitmqctl -q status"
  wait_for 60 MariaDB mysqladmin ping
  wait_for 90 RabbitMQ rabbitmqctl -q await_startup
  mysql <<SQL
DROP DATABASE IF EXISTS neutron; CREATE DATABASE neutron;
DROP DATABASE IF EXISTS octavia; CREATE DATABASE octavia;
CREATE USER IF NOT EXISTS 'lbswap'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'lbswap'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON neutron.* TO 'lbswap'@'localhost'; GRANT ALL ON neutron.* TO 'lbswap'@'127.0.0.1';
GRANT ALL ON octavia.* TO 'lbswap'@'localhost'; GRANT ALL ON octavia.* TO 'lbswap'@'127.0.0.1';
SQL
  "$VENV/bin/neutron-db-manage" --config-file "$RUN/neutron.conf" upgrade heads >"$RUN/neutron-db.log" 2>&1 \
    || die "neutron migrations failed ($RUN/neutron-db.log)"
  "$VENV/bin/octavia-db-manage" --config-file "$RUN/octavia.conf" upgrade head >"$RUN/octavia-db.log" 2>&1 \
    || die "octavia migrations failed ($RUN/octavia-db.log)"
  local gunicorn=("$VENV/bin/gunicorn" -w 1 --threads 4 --no-control-socket --chdir "$RUN" --pythonpath "$RUN")
  spawn neutron-api "${gunicorn[@]}" -b 127.0.0.1:9696 neutron_wsgi:application
  spawn octavia-api "${gunicorn[@]}" -b 127.0.0.1:9876 octavia_wsgi:application
  spawn octavia-worker "$VENV/bin/octavia-worker" --config-file "$RUN/octavia.conf" \
    --config-file "$RUN/octavia-worker.conf"
  wait_for 120 "Neutron API" curl -sf http://127.0.0.1:9696/v2.0/networks
  wait_for 120 "Octavia API" curl -sf http://127.0.0.1:9876/v2/lbaas/providers
  # casts sent before the worker's queue has a consumer are lost on a fresh RabbitMQ
  wait_for 120 "octavia-worker's consumer" worker_consuming
  log "up: Neutron :9696, Octavia :9876, worker consuming; clouds.yaml: $STACK_DIR/clouds.yaml (cloud lbswap-test)"
}

worker_consuming() {
  rabbitmqctl -q list_queues name consumers 2>/dev/null | awk '$1 == "octavia_provisioning_v2" && $2 > 0 {f=1} END {exit !f}'
}

stop() {
  local name pid
  for name in octavia-worker octavia-api neutron-api; do
    [ -f "$RUN/$name.pid" ] || continue
    pid=$(cat "$RUN/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
  done
  for name in rabbitmq-server mariadb; do
    if [ -f "$RUN/started-$name" ]; then
      "/etc/init.d/$name" stop >/dev/null 2>&1 || log "could not stop $name"
      rm -f "$RUN/started-$name"
    fi
  done
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
