"""The local cloud end to end (scripts/test-localcloud.sh): real Octavia 19 drives its own amphora agents in
namespaces (lbswap.localcloud.compute), haproxy answers at the VIP, heartbeats make the load balancer ONLINE,
Octavia's own failover replaces the amphora and cascade delete leaves nothing; Neutron's L3 agent serves a
floating IP on a load balancer's VIP to a client on the external network, and one `PUT /v2.0/floatingips/{id}`
moves it to a second load balancer while a probe opens new connections through it.

Members and the tenant client are namespaces plugged on the tenant network as Neutron ports (a veth with the
port's MAC and fixed IP on Open vSwitch's integration bridge, bound by the Open vSwitch agent: ACTIVE); the
external client is a namespace on the external bridge holding the external network's gateway address. Prints
the timings and the memory it measured."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lbswap.localcloud import guests, probe
from lbswap.localcloud.guests import Guest
from lbswap.localcloud.names import netns_name
from tests.localcloud.conftest import DIR, Cloud, create_http_lb, http_get, sh, wait_lb_online, wait_until

pytestmark = [
    pytest.mark.localcloud,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]


@pytest.fixture
def members(plug: Callable[[str], Guest], tmp_path: Path) -> Iterator[Callable[[], tuple[Guest, str]]]:
    """Member namespaces, each serving on port 8080 a page that names it."""
    servers: list[subprocess.Popen[bytes]] = []

    def make() -> tuple[Guest, str]:
        guest = plug("lcm")
        token = f"member-{uuid.uuid4().hex[:12]}"
        servers.append(guests.serve(guest, token, tmp_path / token))
        return guest, token

    try:
        yield make
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture
def member(members: Callable[[], tuple[Guest, str]]) -> tuple[Guest, str]:
    """A member namespace serving a page that names it, on port 8080."""
    return members()


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def server_pids(cloud: Cloud, server: str) -> list[int]:
    procs = Path(cloud.info["cgroup_dir"]) / server / "cgroup.procs"
    return [int(p) for p in procs.read_text().split()] if procs.exists() else []


def controller_pids() -> list[int]:
    """Every process of the controller services (their process groups, from the recorded pids)."""
    pids = []
    for pidfile in (DIR / "run").glob("*.pid"):
        group = pidfile.read_text().strip()
        pids += [int(p) for p in sh("pgrep", "-g", group, check=False).split()]
    return pids


def netns_list(prefix: str) -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.startswith(prefix)]


def test_load_balancer_served_by_namespace_amphora_fails_over_and_deletes_clean(
    cloud: Cloud, plug: Callable[[str], Guest], member: tuple[Guest, str]
) -> None:
    lbapi = cloud.conn.load_balancer
    backend, token = member
    client = plug("lcc")
    wait_until("the member on the tenant network", lambda: http_get(client, backend.ip, 8080) == token, timeout=30)
    before = cloud.servers()
    figures: dict[str, str] = {}

    # create, fully populated: HTTP listener, pool, one member
    started = time.monotonic()
    lb = create_http_lb(cloud, "lc-test", backend)
    try:
        wait_until("ACTIVE", lambda: cloud.lb(lb.id).provisioning_status in ("ACTIVE", "ERROR"))
        active = time.monotonic() - started
        assert cloud.lb(lb.id).provisioning_status == "ACTIVE", "the load balancer went ERROR (worker log)"
        wait_until("ONLINE from heartbeats", lambda: cloud.lb(lb.id).operating_status == "ONLINE")
        online = time.monotonic() - started
        vip = cloud.lb(lb.id).vip_address
        answer = wait_until("the member's page through the VIP", lambda: http_get(client, vip) == token)
        assert answer
        served = time.monotonic() - started
        figures["create -> ACTIVE"] = f"{active:.1f} s"
        figures["create -> load balancer ONLINE"] = f"{online:.1f} s"
        figures["create -> VIP served"] = f"{served:.1f} s"
        servers = cloud.servers() - before
        assert len(servers) == 1, f"one amphora for SINGLE, found {servers}"
        (first,) = servers
        assert netns_list(netns_name(first)), "the amphora's namespace is missing"
        # the listener's and the member's status (haproxy's health check) come with the heartbeats; statistics too
        wait_until("listener ONLINE", lambda: lbapi.find_listener("lc-http").operating_status == "ONLINE")
        pool = lbapi.find_pool("lc-pool")
        wait_until("member ONLINE", lambda: [m.operating_status for m in lbapi.members(pool)] == ["ONLINE"])
        figures["create -> listener, member ONLINE"] = f"{time.monotonic() - started:.1f} s"
        for _ in range(3):
            assert http_get(client, vip) == token
        stats = wait_until(
            "statistics from heartbeats",
            lambda: (st := lbapi.get_load_balancer_statistics(lb.id)).total_connections >= 4 and st,
        )
        figures["statistics"] = f"{stats.total_connections} connections, {stats.bytes_out} bytes out"
        amp_pids = server_pids(cloud, first)
        assert any("haproxy" in Path(f"/proc/{p}/comm").read_text() for p in amp_pids if Path(f"/proc/{p}").exists())
        figures["amphora PSS"] = f"{pss_kib(amp_pids) / 1024:.0f} MB ({len(amp_pids)} processes)"
        figures["controller PSS"] = f"{pss_kib(controller_pids()) / 1024:.0f} MB"

        # Octavia's own failover: a new amphora, the old one gone (its cgroup and namespace), the VIP served
        started = time.monotonic()
        lbapi.failover_load_balancer(lb.id)
        wait_until(
            "failover started", lambda: cloud.lb(lb.id).provisioning_status != "ACTIVE" or cloud.servers() - {first}
        )
        wait_until("ACTIVE after failover", lambda: cloud.lb(lb.id).provisioning_status in ("ACTIVE", "ERROR"))
        failed_over = time.monotonic() - started
        assert cloud.lb(lb.id).provisioning_status == "ACTIVE", "failover ended in ERROR (worker log)"
        wait_until("the VIP served after failover", lambda: http_get(client, vip) == token)
        served = time.monotonic() - started
        figures["failover -> ACTIVE"] = f"{failed_over:.1f} s"
        figures["failover -> VIP served"] = f"{served:.1f} s"
        after = cloud.servers() - before
        assert first not in after and len(after) == 1, f"failover should replace {first}: {after}"
        assert not netns_list(netns_name(first)), "the failed-over amphora's namespace is left"
        assert not (Path(cloud.info["cgroup_dir"]) / first).exists(), "the failed-over amphora's cgroup is left"
        wait_until("ONLINE after failover", lambda: cloud.lb(lb.id).operating_status == "ONLINE")
    finally:
        # cascade delete: no amphora, namespace, process or port left
        started = time.monotonic()
        lbapi.delete_load_balancer(lb.id, cascade=True, ignore_missing=True)
        wait_until("deleted", lambda: lbapi.find_load_balancer(lb.id) is None)
        figures["cascade delete"] = f"{time.monotonic() - started:.1f} s"
    assert cloud.servers() == before, "an amphora is left after cascade delete"
    assert not netns_list("lcamp-"), "an amphora namespace is left"
    cgroups = Path(cloud.info["cgroup_dir"])
    assert not [p for p in cgroups.iterdir() if p.is_dir()], "an amphora cgroup is left"
    ports = [p.name for p in cloud.conn.network.ports(network_id=cloud.info["tenant_network_id"])]
    assert not [n for n in ports if n.startswith("octavia-")], f"Octavia's ports are left: {ports}"
    mgmt = [p.name for p in cloud.conn.network.ports(network_id=cloud.info["management_network_id"])]
    mgmt = [name for name in mgmt if name != "lc-controller"]  # the controller's own port stays
    assert not mgmt, f"management ports are left: {mgmt}"
    width = max(len(k) for k in figures)
    print("\nlocal cloud, Octavia with namespace amphorae:")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    assert shutil.which("haproxy")


PROBE_RATE = 150.0  # new connections per second through the floating IP
PROBE_SECONDS = 12.0  # long enough for a PUT of several seconds on a loaded machine
MOVE_AT = 2.0  # seconds into the probe


def test_floating_ip_served_by_the_l3_agent_moves_between_load_balancers_without_failed_connections(
    cloud: Cloud,
    plug: Callable[[str], Guest],
    members: Callable[[], tuple[Guest, str]],
    external_client: Guest,
    tmp_path: Path,
) -> None:
    net, lbapi = cloud.conn.network, cloud.conn.load_balancer
    (backend1, token1), (backend2, token2) = members(), members()
    figures: dict[str, str] = {}
    started = time.monotonic()
    lbs = [create_http_lb(cloud, "lc-fip-1", backend1, "-1"), create_http_lb(cloud, "lc-fip-2", backend2, "-2")]
    fip = None
    try:
        for lb in lbs:
            wait_lb_online(cloud, lb.id)
        figures["two load balancers ACTIVE and ONLINE"] = f"{time.monotonic() - started:.1f} s"
        # every port of the amphorae is bound by the Open vSwitch agent
        servers = cloud.servers()
        amp_ports = [p for s in servers for p in net.ports(device_id=s)]
        assert len(amp_ports) >= 4, f"two ports per amphora, found {[p.name for p in amp_ports]}"
        assert all(p.status == "ACTIVE" for p in amp_ports), [(p.name, p.status) for p in amp_ports]
        vip_ports = [cloud.lb(lb.id).vip_port_id for lb in lbs]

        # a floating IP on the first VIP, served to the external client through the router's NAT
        started = time.monotonic()
        fip = net.create_ip(floating_network_id=cloud.info["external_network_id"], port_id=vip_ports[0])
        address = fip.floating_ip_address
        wait_until("the first member through the floating IP", lambda: http_get(external_client, address) == token1)
        figures["floating IP created -> served"] = f"{time.monotonic() - started:.1f} s"
        namespace = f"qrouter-{cloud.info['router_id']}"
        nat = sh("ip", "netns", "exec", namespace, "iptables-save", "-t", "nat")
        assert f"-d {address}/32" in nat, "no DNAT for the floating IP in the router's namespace"

        # move it to the second load balancer while new connections go through it
        out = tmp_path / "probe.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        cmd = [sys.executable, "-m", "lbswap.localcloud.probe", address, "--out", str(out)]
        cmd += ["--rate", str(PROBE_RATE), "--duration", str(PROBE_SECONDS)]
        with subprocess.Popen(
            ["ip", "netns", "exec", external_client.ns, *cmd], stdout=subprocess.PIPE, text=True, env=env
        ) as runner:
            assert runner.stdout is not None
            assert runner.stdout.readline().strip() == "ready"
            time.sleep(MOVE_AT)  # a real cloud: the move happens in real time, in the middle of the probe
            put_started = time.monotonic()
            net.update_ip(fip, port_id=vip_ports[1])
            put_answered = time.monotonic()
            assert runner.wait(timeout=PROBE_SECONDS + 30) == 0
        move = probe.analyze(probe.load(out), token2, put_answered)
        delay = move.delay_after(put_answered)
        figures["probe"] = f"{move.connections} new connections at {PROBE_RATE:.0f}/s, move at {MOVE_AT:.0f} s"
        figures["failed connections"] = str(move.failed)
        figures["longest gap between answers"] = f"{move.longest_gap * 1000:.0f} ms"
        figures["PUT /v2.0/floatingips/{id}"] = f"{put_answered - put_started:.2f} s"
        if move.switched_at is not None and delay is not None:
            figures["PUT started -> data plane switched"] = f"{move.switched_at - put_started:.2f} s"
            figures["API answered -> data plane switched"] = f"{delay:.2f} s"
        figures["first LB's answers after the API answered"] = str(move.source_after_answer)
        assert move.failed == 0, f"{move.failed} connections failed through the floating IP move"
        assert move.switched_at is not None, "no new connection was served by the second load balancer"
        assert move.served_by_target_after >= PROBE_RATE, "too few connections served by the second one"
        assert move.switched_at > put_started - 0.5, "served by the second load balancer before the move"
        assert http_get(external_client, address) == token2
        latencies = [r.end - r.start for r in probe.load(out)]
        figures["probe connection time"] = (
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms"
        )
    finally:
        if fip is not None:
            net.delete_ip(fip, ignore_missing=True)
        for lb in lbs:
            lbapi.delete_load_balancer(lb.id, cascade=True, ignore_missing=True)
        for lb in lbs:
            wait_until("deleted", lambda lb_id=lb.id: lbapi.find_load_balancer(lb_id) is None)
    if fip is not None:
        router_ns = f"qrouter-{cloud.info['router_id']}"
        wait_until(
            "the floating IP's NAT removed",
            lambda: f"-d {fip.floating_ip_address}/32" not in sh("ip", "netns", "exec", router_ns, "iptables-save"),
            timeout=30,
        )
    width = max(len(k) for k in figures)
    print("\nlocal cloud, a floating IP moved by Neutron's L3 agent:")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
