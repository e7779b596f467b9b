#!/usr/bin/env bash
# The local cloud: real OpenStack on this host, stage 2. `up` starts Open vSwitch (userspace datapath, its own
# database and sockets), Neutron (API, RPC server, Open vSwitch agent, L3 agent in legacy mode) and Octavia (API,
# worker, health manager) with the amphora REST driver, the allowed-address-pairs network driver and the
# namespace compute driver (src/lbswap/localcloud/compute.py): every amphora is a network namespace running
# Octavia's own amphora agent and haproxy, its ports veths on the integration bridge that the Open vSwitch agent
# binds (ACTIVE). The controller reaches the management network through an internal port of its own (a Neutron
# port too) and gets real heartbeats; a router joins the tenant network to a flat external network whose
# bridge holds nothing but the namespaces a test plugs there, so floating IPs are real L3-agent NAT.
#
# Apart from the tier 2 stack (scripts/openstack-stack.sh) so that both can run at once: its own databases
# (lc_neutron, lc_octavia) and database user, RabbitMQ vhost, ports (Neutron 19696, Octavia 19876, heartbeats
# 15555 on the management network, OpenFlow 16633), Open vSwitch database and bridges (lcbr-*), and directory
# ($LBSWAP_LOCALCLOUD_DIR, default /opt/lbswap-localcloud).
# It shares the MariaDB, RabbitMQ and virtualenv of tier 2 (scripts/setup-localcloud.sh installs them).
#
# `up` writes $DIR/clouds.yaml (cloud `lbswap-localcloud`) and $DIR/cloud.json (the ids of the networks it
# and bridges it made). `down` ends every process it started (by recorded pid, servers by their cgroups, Open
# vSwitch by its pid files) and removes every namespace (router ones too), bridge, cgroup, Open vSwitch database,
# database, database user and vhost it made. Both are idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DIR=${LBSWAP_LOCALCLOUD_DIR:-/opt/lbswap-localcloud}
RUN="$DIR/run"
VENV="${LBSWAP_STACK_DIR:-/opt/lbswap-stack}/venv"
CGROUP_ROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
CGROUP="$CGROUP_ROOT/lbswap-localcloud"
DB_USER=lbswap_lc
DB_PASS=lbswap-localcloud  # a throwaway password for databases on 127.0.0.1 only
VHOST=lbswap-localcloud
NEUTRON_PORT=19696
OCTAVIA_PORT=19876
HM_PORT=15555
MGMT_CIDR=10.251.0.0/24
MGMT_HOST_IP=10.251.0.1
TENANT_CIDR=10.252.0.0/24
EXT_CIDR=10.253.0.0/24 # the external network: a private range that only this host's namespaces hold
EXT_GATEWAY=10.253.0.1 # the upstream address, held by the client namespace a test plugs on the external bridge
AGENT_HOST=lbswap-localcloud # the agents' `host`: ports are bound to it
OVS="$RUN/ovs"
BR_INT=lcbr-int
BR_EX=lcbr-ex
BR_TENANT=lcbr-ten
MGMT_DEV=lcmgmt0 # the controller's port on the management network (an Open vSwitch internal port)
SERVICES=(octavia-health-manager octavia-worker octavia-api neutron-l3-agent neutron-openvswitch-agent
  neutron-rpc-server neutron-api)
# Open vSwitch's tools find this database and its daemons' sockets through these (the agents' too)
export OVS_RUNDIR=$OVS OVS_DBDIR=$OVS OVS_LOGDIR=$DIR/logs OVS_SYSCONFDIR=$OVS

log() { echo "local-cloud: $*" >&2; }
T0=$SECONDS
phase() { log "$(printf '%3d s' $((SECONDS - T0))) $*"; }
die() {
  log "$*"
  exit 1
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up in time (logs in $RUN)"
    sleep 0.3
  done
}

write_certs() { # a throwaway CA signing the amphorae's server certificates and the controller's client one
  local c="$RUN/certs"
  mkdir -p "$c"
  [ -f "$c/client.pem" ] && return
  openssl req -x509 -newkey rsa:2048 -days 30 -subj /CN=lbswap-localcloud-ca -passout pass:lbswap-localcloud \
    -keyout "$c/ca.key" -out "$c/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=lbswap-localcloud-controller -keyout "$c/client.key" \
    -out "$c/client.csr" 2>/dev/null
  openssl x509 -req -in "$c/client.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -passin pass:lbswap-localcloud \
    -CAcreateserial -days 30 -out "$c/client.crt" 2>/dev/null
  cat "$c/client.crt" "$c/client.key" >"$c/client.pem"
}

write_pylib() { # entry points for Octavia's processes: our compute driver and a no-auth keystone plugin
  local lib="$RUN/pylib"
  mkdir -p "$lib/lbswap_localcloud-1.0.dist-info"
  cat >"$lib/lbswap_lc_noauth.py" <<'PY'
# keystoneauth's NoAuth under a name of its own with no options: Octavia's [neutron] endpoint option collides
# with those of keystoneauth's `none` loader ("duplicate option: endpoint").
from keystoneauth1 import loading, noauth


class NoAuthLoader(loading.BaseLoader):
    @property
    def plugin_class(self):
        return noauth.NoAuth

    def get_options(self):
        return []
PY
  printf 'Metadata-Version: 2.1\nName: lbswap-localcloud\nVersion: 1.0\n' \
    >"$lib/lbswap_localcloud-1.0.dist-info/METADATA"
  cat >"$lib/lbswap_localcloud-1.0.dist-info/entry_points.txt" <<'EP'
[keystoneauth1.plugin]
lbswap_lc_noauth = lbswap_lc_noauth:NoAuthLoader

[octavia.compute.drivers]
lbswap_namespace_compute = lbswap.localcloud.compute:NamespaceCompute
EP
}

write_neutron_conf() {
  cp "$VENV/etc/neutron/api-paste.ini" "$RUN/neutron-api-paste.ini"
  cat >"$RUN/neutron.conf" <<CONF
[DEFAULT]
auth_strategy = noauth
core_plugin = ml2
service_plugins = router
transport_url = rabbit://guest:guest@127.0.0.1:5672/$VHOST
api_paste_config = $RUN/neutron-api-paste.ini
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false
state_path = $RUN/neutron-state
rpc_workers = 1
rpc_state_report_workers = 1
host = $AGENT_HOST
[agent]
root_helper = env
[database]
connection = mysql+pymysql://$DB_USER:$DB_PASS@127.0.0.1/lc_neutron
[ml2]
type_drivers = flat,vlan
tenant_network_types = vlan
mechanism_drivers = openvswitch
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vlan]
network_vlan_ranges = tenant:100:199
[ovs]
integration_bridge = $BR_INT
ovsdb_connection = unix:$OVS/db.sock
[oslo_concurrency]
lock_path = $RUN/locks
CONF
  # the Open vSwitch agent: userspace datapath, the external and tenant physical networks on bridges of their
  # own, no firewall (the noop driver: security groups are not what this cloud measures)
  cat >"$RUN/ovs_agent.ini" <<CONF
[ovs]
datapath_type = netdev
bridge_mappings = public:$BR_EX,tenant:$BR_TENANT
of_listen_port = 16633
[agent]
tunnel_types =
[securitygroup]
firewall_driver = noop
CONF
  # the L3 agent: legacy routers (no HA, no DVR), no metadata proxy
  cat >"$RUN/l3_agent.ini" <<CONF
[DEFAULT]
interface_driver = openvswitch
agent_mode = legacy
enable_metadata_proxy = false
CONF
  cat >"$RUN/neutron_wsgi.py" <<PY
import sys
sys.argv = ["neutron-api", "--config-file", "$RUN/neutron.conf"]
from neutron.wsgi.api import application  # noqa: E402,F401
PY
}

write_octavia_conf() { # write_octavia_conf MGMT_NETWORK_ID
  local key pass
  key=$(cat "$RUN/heartbeat.key")
  pass=$(cat "$RUN/certs/passphrase")
  cat >"$RUN/octavia.conf" <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/$VHOST
[api_settings]
auth_strategy = noauth
bind_host = 127.0.0.1
bind_port = $OCTAVIA_PORT
[database]
connection = mysql+pymysql://$DB_USER:$DB_PASS@127.0.0.1/lc_octavia
[health_manager]
bind_ip = $MGMT_HOST_IP
bind_port = $HM_PORT
controller_ip_port_list = $MGMT_HOST_IP:$HM_PORT
heartbeat_key = $key
heartbeat_interval = 2
health_check_interval = 3
heartbeat_timeout = 60
[controller_worker]
amphora_driver = amphora_haproxy_rest_driver
compute_driver = lbswap_namespace_compute
network_driver = allowed_address_pairs_driver
volume_driver = volume_noop_driver
image_driver = image_noop_driver
amp_boot_network_list = $1
amp_flavor_id = lc-amphora
amp_image_tag = amphora
client_ca = $RUN/certs/ca.pem
loadbalancer_topology = SINGLE
amp_active_retries = 30
amp_active_wait_sec = 1
[task_flow]
jobboard_enabled = false
[certificates]
cert_generator = local_cert_generator
ca_certificate = $RUN/certs/ca.pem
ca_private_key = $RUN/certs/ca.key
ca_private_key_passphrase = lbswap-localcloud
server_certs_key_passphrase = $pass
[haproxy_amphora]
server_ca = $RUN/certs/ca.pem
client_cert = $RUN/certs/client.pem
bind_host = 0.0.0.0
bind_port = 9443
connection_retry_interval = 1
active_connection_retry_interval = 1
[neutron]
auth_type = lbswap_lc_noauth
endpoint_override = http://127.0.0.1:$NEUTRON_PORT
[lbswap_localcloud]
integration_bridge = $BR_INT
ovsdb = unix:$OVS/db.sock
host = $AGENT_HOST
state_dir = $DIR/servers
cgroup_dir = $CGROUP
image_catalog = $DIR/images.json
agent_bin_dir = $VENV/bin
[oslo_concurrency]
lock_path = $RUN/locks
CONF
  cat >"$RUN/octavia_wsgi.py" <<PY
import sys
sys.argv = ["octavia-api", "--config-file", "$RUN/octavia.conf"]
from octavia.wsgi.api import application  # noqa: E402,F401
PY
}

write_images() { # the compute driver's image catalog: what Glance would answer for the amphora tag
  cat >"$DIR/images.json" <<JSON
[{"id": "7c1d5a0e-2f3b-4c8d-9e6f-0a1b2c3d4e5f", "name": "amphora-namespace-debian12", "tags": ["amphora"],
  "owner": null, "status": "active", "created_at": "$(date -u +%FT%TZ)",
  "properties": {"haproxy": "$(dpkg-query -W -f='${Version}' haproxy 2>/dev/null || echo none)"}}]
JSON
}

start_service() { # start MariaDB or RabbitMQ through its init script unless running, noting that we did
  local name=$1 check=$2
  if ! eval "$check" >/dev/null 2>&1; then
    "/etc/init.d/$name" start >"$RUN/$name-init.log" 2>&1 || die "could not start $name ($RUN/$name-init.log)"
    touch "$DIR/started-$name"
  fi
}

spawn() { # spawn NAME COMMAND...: in its own session, pid recorded for down
  local name=$1
  shift
  setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

neutron() { # neutron METHOD PATH [JSON]: the Neutron API, answer on stdout
  curl -sf -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "http://127.0.0.1:$NEUTRON_PORT/v2.0$2"
}

json_get() { "$VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }

make_network() { # make_network NAME CIDR GATEWAY [NETWORK_JSON]: network + subnet through the API; prints their ids
  local net subnet
  net=$(neutron POST /networks "{\"network\": {\"name\": \"$1\"${4:+, $4}}}" | json_get "['network']['id']")
  subnet=$(neutron POST /subnets "{\"subnet\": {\"network_id\": \"$net\", \"name\": \"$1\", \"cidr\": \"$2\",
    \"ip_version\": 4, \"gateway_ip\": $3, \"enable_dhcp\": false}}" | json_get "['subnet']['id']")
  echo "$net $subnet"
}

start_ovs() { # Open vSwitch with a database and sockets of its own ($OVS), bridges on the userspace datapath
  mkdir -p "$OVS"
  ovsdb-tool create "$OVS/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$OVS/conf.db" --remote="punix:$OVS/db.sock" --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
    --pidfile="$OVS/ovsdb-server.pid" --detach --log-file="$DIR/logs/ovsdb-server.log" -vconsole:off \
    2>>"$DIR/logs/ovsdb-server.log" # (it names its log file on stderr before reading -vconsole)
  ovs-vsctl --no-wait init
  # ovsdbapp (the agents) adds its connection as a Manager; ovsdb-server then listens anew on that socket and drops
  # every client (an ovs-vsctl of ours at that moment fails): declare it now, while nobody is connected
  ovs-vsctl --no-wait set-manager "punix:$OVS/db.sock"
  wait_for 10 "ovsdb-server's socket" ovs-vsctl --timeout=2 --no-wait show
  # no openvswitch kernel module here: it logs that the ovs_datapath family is missing, then runs netdev bridges
  ovs-vswitchd "unix:$OVS/db.sock" --pidfile="$OVS/ovs-vswitchd.pid" --detach -vconsole:off \
    --log-file="$DIR/logs/ovs-vswitchd.log"
  local br
  for br in "$BR_INT" "$BR_EX" "$BR_TENANT"; do # the agent exits when a mapped bridge is missing
    ovs-vsctl --may-exist add-br "$br" -- set Bridge "$br" datapath_type=netdev
  done
}

stop_ovs() { # the bridges first (their ports and taps go with them), then the daemons, then the database
  local name pid
  if [ -S "$OVS/db.sock" ]; then
    for br in $(ovs-vsctl --timeout=5 list-br 2>/dev/null); do ovs-vsctl --timeout=5 del-br "$br" || true; done
  fi
  for name in ovs-vswitchd ovsdb-server; do
    [ -f "$OVS/$name.pid" ] || continue
    pid=$(cat "$OVS/$name.pid")
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$OVS"
}

write_sudo() { # ovsdbapp runs `sudo ovs-vsctl` to declare its manager: no sudo here, and root needs none
  mkdir -p "$RUN/bin"
  cat >"$RUN/bin/sudo" <<'SH'
#!/bin/sh
while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
exec "$@"
SH
  chmod +x "$RUN/bin/sudo"
}

agents_alive() { # agents_alive N: N agents report alive
  neutron GET /agents | "$VENV/bin/python" -c \
    'import json,sys; sys.exit(sum(a["alive"] for a in json.load(sys.stdin)["agents"]) < int(sys.argv[1]))' "$1"
}

port_active() { neutron GET "/ports/$1" | grep -q '"status": *"ACTIVE"'; }

controller_port() { # controller_port MGMT_NETWORK MGMT_SUBNET: the controller's address on the management network
  local port id mac
  port=$(neutron POST /ports "{\"port\": {\"network_id\": \"$1\", \"name\": \"lc-controller\",
    \"fixed_ips\": [{\"subnet_id\": \"$2\", \"ip_address\": \"$MGMT_HOST_IP\"}], \"device_id\": \"lc-controller\",
    \"device_owner\": \"compute:lbswap-controller\", \"binding:host_id\": \"$AGENT_HOST\"}}")
  id=$(json_get "['port']['id']" <<<"$port")
  mac=$(json_get "['port']['mac_address']" <<<"$port")
  ovs-vsctl -- --may-exist add-port "$BR_INT" "$MGMT_DEV" -- set Interface "$MGMT_DEV" type=internal \
    "mac=\"$mac\"" "external_ids:iface-id=$id" "external_ids:attached-mac=$mac" external_ids:iface-status=active
  wait_for 20 "the controller's port $MGMT_DEV" test -e "/sys/class/net/$MGMT_DEV"
  ip link set "$MGMT_DEV" address "$mac"
  ip addr replace "$MGMT_HOST_IP/${MGMT_CIDR#*/}" dev "$MGMT_DEV"
  ip link set "$MGMT_DEV" up
  echo "$id"
}

is_up() {
  local name
  for name in "${SERVICES[@]}"; do
    [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || return 1
  done
  curl -sf "http://127.0.0.1:$OCTAVIA_PORT/v2/lbaas/providers" >/dev/null
}

consuming() { # consuming QUEUE: the queue has a consumer on our vhost
  rabbitmqctl -q list_queues -p "$VHOST" name consumers 2>/dev/null \
    | awk -v q="$1" '$1 == q && $2 > 0 {f=1} END {exit !f}'
}

up() {
  [ -x "$VENV/bin/octavia-worker" ] || die "no $VENV: run scripts/setup-localcloud.sh first"
  command -v haproxy >/dev/null || die "no haproxy: run scripts/setup-localcloud.sh first"
  command -v ovs-vswitchd >/dev/null || die "no Open vSwitch: run scripts/setup-localcloud.sh first"
  [ -n "$CGROUP_ROOT" ] || die "no cgroup v2 hierarchy mounted"
  if is_up; then
    log "already up (clouds.yaml: $DIR/clouds.yaml)"
    return
  fi
  down quiet
  local t0=$SECONDS
  mkdir -p "$RUN/locks" "$RUN/neutron-state" "$DIR/logs" "$DIR/servers" "$CGROUP"
  write_certs
  [ -f "$RUN/heartbeat.key" ] || openssl rand -hex 16 >"$RUN/heartbeat.key"
  [ -f "$RUN/certs/passphrase" ] || openssl rand -hex 16 >"$RUN/certs/passphrase" # 32 characters, as Fernet needs
  write_pylib
  write_neutron_conf
  write_images
  write_sudo
  start_service mariadb "mysqladmin ping"
  start_service rabbitmq-server "rabbitmqctl -q status"
  wait_for 60 MariaDB mysqladmin ping
  wait_for 90 RabbitMQ rabbitmqctl -q await_startup
  mysql <<SQL
DROP DATABASE IF EXISTS lc_neutron; CREATE DATABASE lc_neutron;
DROP DATABASE IF EXISTS lc_octavia; CREATE DATABASE lc_octavia;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON lc_neutron.* TO '$DB_USER'@'localhost'; GRANT ALL ON lc_neutron.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON lc_octavia.* TO '$DB_USER'@'localhost'; GRANT ALL ON lc_octavia.* TO '$DB_USER'@'127.0.0.1';
SQL
  phase "databases and vhost"
  rabbitmqctl -q add_vhost "$VHOST" >/dev/null
  rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
  # both migrations at once (the management network's id, unknown yet, does not matter to them)
  write_octavia_conf pending
  "$VENV/bin/octavia-db-manage" --config-file "$RUN/octavia.conf" upgrade head >"$DIR/logs/octavia-db.log" 2>&1 &
  local octavia_db=$!
  start_ovs
  phase "open vswitch up"
  "$VENV/bin/neutron-db-manage" --config-file "$RUN/neutron.conf" upgrade heads >"$DIR/logs/neutron-db.log" 2>&1 \
    || die "neutron migrations failed ($DIR/logs/neutron-db.log)"
  phase "neutron migrated"
  local gunicorn=("$VENV/bin/gunicorn" -w 1 --threads 4 --no-control-socket --chdir "$RUN" --pythonpath "$RUN")
  spawn neutron-api "${gunicorn[@]}" -b "127.0.0.1:$NEUTRON_PORT" neutron_wsgi:application
  spawn neutron-rpc-server "$VENV/bin/neutron-rpc-server" --config-file "$RUN/neutron.conf"
  # agents that start before the RPC server consumes its queues lose their first calls (a minute or more)
  local queue
  for queue in q-plugin q-l3-plugin q-reports-plugin; do
    wait_for 120 "neutron-rpc-server's consumer of $queue" consuming "$queue"
  done
  phase "neutron rpc up"
  # the agents run privsep and Open vSwitch's tools as root through `env` (no sudo): the venv's bin first on PATH
  PATH="$RUN/bin:$VENV/bin:$PATH" spawn neutron-openvswitch-agent "$VENV/bin/neutron-openvswitch-agent" \
    --config-file "$RUN/neutron.conf" --config-file "$RUN/ovs_agent.ini"
  PATH="$RUN/bin:$VENV/bin:$PATH" spawn neutron-l3-agent "$VENV/bin/neutron-l3-agent" \
    --config-file "$RUN/neutron.conf" --config-file "$RUN/l3_agent.ini"
  wait_for 120 "Neutron API" neutron GET /networks
  # the management network (VLAN: the controller's port carries 10.251.0.1, no gateway), the tenant network
  # (VLAN: members, VIPs; its gateway is the router's), the external network (flat, on the external bridge)
  local mgmt tenant ext router
  read -r -a mgmt <<<"$(make_network lb-mgmt-net "$MGMT_CIDR" null)"
  read -r -a tenant <<<"$(make_network lc-tenant "$TENANT_CIDR" "\"${TENANT_CIDR%.0/24}.1\"")"
  read -r -a ext <<<"$(make_network lc-public "$EXT_CIDR" "\"$EXT_GATEWAY\"" \
    '"router:external": true, "provider:network_type": "flat", "provider:physical_network": "public"')"
  write_octavia_conf "${mgmt[0]}"
  phase "networks made"
  wait_for 120 "the Open vSwitch and L3 agents" agents_alive 2
  phase "agents alive"
  local controller
  controller=$(controller_port "${mgmt[0]}" "${mgmt[1]}")
  router=$(neutron POST /routers "{\"router\": {\"name\": \"lc-router\",
    \"external_gateway_info\": {\"network_id\": \"${ext[0]}\"}}}" | json_get "['router']['id']")
  echo "$router" >"$DIR/routers"
  neutron PUT "/routers/$router/add_router_interface" "{\"subnet_id\": \"${tenant[1]}\"}" >/dev/null
  wait "$octavia_db" || die "octavia migrations failed ($DIR/logs/octavia-db.log)"
  wait_for 60 "the controller's port ACTIVE" port_active "$controller"
  phase "controller port active, octavia migrated"
  export PYTHONPATH="$RUN/pylib:$REPO/src"
  spawn octavia-api "${gunicorn[@]}" -b "127.0.0.1:$OCTAVIA_PORT" octavia_wsgi:application
  spawn octavia-worker "$VENV/bin/octavia-worker" --config-file "$RUN/octavia.conf"
  spawn octavia-health-manager "$VENV/bin/octavia-health-manager" --config-file "$RUN/octavia.conf"
  unset PYTHONPATH
  wait_for 120 "the router's namespace" ip netns exec "qrouter-$router" true
  wait_for 120 "Octavia API" curl -sf "http://127.0.0.1:$OCTAVIA_PORT/v2/lbaas/providers"
  # casts sent before a queue has its consumer are lost on a fresh vhost
  phase "octavia API up"
  wait_for 120 "octavia-worker's consumer" consuming octavia_provisioning_v2
  cat >"$DIR/clouds.yaml" <<YAML
clouds:
  lbswap-localcloud:
    auth_type: none
    network_endpoint_override: http://127.0.0.1:$NEUTRON_PORT
    load_balancer_endpoint_override: http://127.0.0.1:$OCTAVIA_PORT
YAML
  cat >"$DIR/cloud.json" <<JSON
{"management_network_id": "${mgmt[0]}", "management_subnet_id": "${mgmt[1]}",
 "tenant_network_id": "${tenant[0]}", "tenant_subnet_id": "${tenant[1]}", "tenant_cidr": "$TENANT_CIDR",
 "tenant_gateway": "${TENANT_CIDR%.0/24}.1",
 "external_network_id": "${ext[0]}", "external_subnet_id": "${ext[1]}", "external_cidr": "$EXT_CIDR",
 "external_gateway": "$EXT_GATEWAY", "router_id": "$router", "agent_host": "$AGENT_HOST",
 "integration_bridge": "$BR_INT", "external_bridge": "$BR_EX", "ovsdb": "unix:$OVS/db.sock",
 "servers_dir": "$DIR/servers", "cgroup_dir": "$CGROUP", "run_dir": "$RUN"}
JSON
  log "up in $((SECONDS - t0)) s: Neutron :$NEUTRON_PORT, Octavia :$OCTAVIA_PORT, heartbeats $MGMT_HOST_IP:$HM_PORT;" \
    "router $router; clouds.yaml: $DIR/clouds.yaml (cloud lbswap-localcloud)"
}

stop_services() { # TERM every recorded process group at once, KILL what is left after 5 s
  local name pid alive pids=()
  for name in "${SERVICES[@]}"; do
    [ -f "$RUN/$name.pid" ] || continue
    pid=$(cat "$RUN/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$RUN/$name.pid"
  done
  for _ in $(seq 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.25
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

tier2_running() {
  local pidfile="${LBSWAP_STACK_DIR:-/opt/lbswap-stack}/run/octavia-worker.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

down() {
  local quiet=${1:-} name cg ns link
  stop_services
  # servers: every process of an amphora is in its cgroup (haproxy too, in its nested namespace)
  if [ -d "$CGROUP" ]; then
    for cg in "$CGROUP"/*/; do
      [ -d "$cg" ] || continue
      echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
      for _ in $(seq 100); do grep -q 'populated 0' "$cg/cgroup.events" 2>/dev/null && break; sleep 0.05; done
      rmdir "$cg" 2>/dev/null || log "cgroup $cg still busy"
    done
    rmdir "$CGROUP" 2>/dev/null || log "cgroup $CGROUP still busy"
  fi
  stop_ovs
  # namespaces (servers lcamp-*, the test's lcm-*/lcc-*/lcx-*, the L3 agent's qrouter-<router> of the routers
  # `up` made) and links (veths lcp*/lcx*, the stage 1 bridges lcb*) of this cloud
  local routers=""
  [ -f "$DIR/routers" ] && routers=$(sed 's/^/qrouter-/' "$DIR/routers" | paste -sd'|')
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^(lc(amp|m|c|x)-${routers:+|$routers$})" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^lc[bpx][0-9a-f]{11}$' || true); do
    ip link del "$link" 2>/dev/null || true
  done
  if mysqladmin ping >/dev/null 2>&1; then
    mysql -e "DROP DATABASE IF EXISTS lc_neutron; DROP DATABASE IF EXISTS lc_octavia;
      DROP USER IF EXISTS '$DB_USER'@'localhost'; DROP USER IF EXISTS '$DB_USER'@'127.0.0.1';" || true
  fi
  if rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$VHOST"; then
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null || true
  fi
  # MariaDB and RabbitMQ only when this script started them and tier 2 does not use them right now
  for name in rabbitmq-server mariadb; do
    if [ -f "$DIR/started-$name" ] && ! tier2_running; then
      "/etc/init.d/$name" stop >/dev/null 2>&1 || log "could not stop $name"
      rm -f "$DIR/started-$name"
    fi
  done
  rm -rf "$RUN" "$DIR/servers" "$DIR/clouds.yaml" "$DIR/cloud.json" "$DIR/images.json" "$DIR/routers"
  [ -n "$quiet" ] || log "down (logs kept in $DIR/logs)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
