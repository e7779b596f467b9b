"""The local cloud's Octavia end to end (scripts/test-localcloud.sh): real Octavia 19 drives its own amphora agents
in namespaces (lbswap.localcloud.compute), haproxy answers at the VIP, heartbeats make the load balancer ONLINE,
Octavia's own failover replaces the amphora and cascade delete leaves nothing.

Members and the client are namespaces plugged on the tenant network as Neutron ports (veth with the port's MAC
and fixed IP on the network's bridge). Prints the timings and the memory it measured."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lbswap.localcloud.names import host_veth_name, netns_name

pytestmark = [
    pytest.mark.localcloud,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]

DIR = Path(os.environ.get("LBSWAP_LOCALCLOUD_DIR", "/opt/lbswap-localcloud"))
PROJECT = "5a0c7e2d9b8f4c1e8d6a3b2c1f0e9d8c"
ACTIVE_TIMEOUT = 120.0


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def wait_until(what: str, probe: Callable[[], Any], timeout: float = ACTIVE_TIMEOUT, interval: float = 0.25) -> Any:
    """probe()'s first truthy answer; fails with the last answer after timeout (a real cloud: real time)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:.0f} s (last: {last!r})")


@dataclass
class Cloud:
    conn: Any
    info: dict[str, Any]

    def lb(self, lb_id: str) -> Any:
        return self.conn.load_balancer.get_load_balancer(lb_id)

    def servers(self) -> set[str]:
        """The compute driver's servers (one directory each)."""
        path = Path(self.info["servers_dir"])
        return {p.name for p in path.iterdir() if p.is_dir()} if path.is_dir() else set()


@pytest.fixture(scope="module")
def cloud() -> Cloud:
    if not (DIR / "cloud.json").is_file() or not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        pytest.fail("the local cloud is not up: run scripts/test-localcloud.sh (or scripts/local-cloud.sh up)")
    import openstack

    conn = openstack.connect(cloud="lbswap-localcloud")
    return Cloud(conn=conn, info=json.loads((DIR / "cloud.json").read_text()))


@dataclass
class Guest:
    """A namespace plugged on the tenant network as a Neutron port."""

    ns: str
    ip: str
    port_id: str


@pytest.fixture
def plug(cloud: Cloud) -> Iterator[Callable[[str], Guest]]:
    made: list[Guest] = []

    def make(prefix: str) -> Guest:
        net = cloud.conn.network
        port = net.create_port(network_id=cloud.info["tenant_network_id"], name=f"lc-test-{prefix}", project_id=PROJECT)
        ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
        outer = host_veth_name(port.id)
        ip = port.fixed_ips[0]["ip_address"]
        guest = Guest(ns=ns, ip=ip, port_id=port.id)
        made.append(guest)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", port.mac_address)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/{cloud.info['tenant_cidr'].split('/')[1]}", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "set", outer, "master", cloud.info["tenant_bridge"], "up")
        net.update_port(port.id, device_id=ns, device_owner="compute:lbswap-test")
        return guest

    yield make
    for guest in made:
        for pid in sh("ip", "netns", "pids", guest.ns, check=False).split():
            subprocess.run(["kill", "-KILL", pid], check=False)
        sh("ip", "netns", "del", guest.ns, check=False)
        sh("ip", "link", "del", host_veth_name(guest.port_id), check=False)
        cloud.conn.network.delete_port(guest.port_id, ignore_missing=True)


@pytest.fixture
def member(plug: Callable[[str], Guest], tmp_path: Path) -> Iterator[tuple[Guest, str]]:
    """A member namespace serving a page that names it, on port 8080."""
    guest = plug("lcm")
    token = f"member-{uuid.uuid4().hex[:12]}"
    (tmp_path / "index.html").write_text(token + "\n")
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            guest.ns,
            sys.executable,
            "-m",
            "http.server",
            "8080",
            "--bind",
            guest.ip,
            "--directory",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield guest, token
    finally:
        server.kill()
        server.wait(timeout=10)


def http_get(client: Guest, address: str, port: int = 80) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", client.ns, "curl", "-s", "-m", "2", f"http://{address}:{port}/"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return proc.stdout.strip()


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
    assert http_get(client, backend.ip, 8080) == token, "the member does not answer on the tenant network"
    before = cloud.servers()
    figures: dict[str, str] = {}

    # create, fully populated: HTTP listener, pool, one member
    started = time.monotonic()
    lb = lbapi.create_load_balancer(
        name="lc-test",
        project_id=PROJECT,
        vip_subnet_id=cloud.info["tenant_subnet_id"],
        listeners=[
            {
                "name": "lc-http",
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {
                    "name": "lc-pool",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "healthmonitor": {"type": "HTTP", "delay": 2, "timeout": 1, "max_retries": 1, "url_path": "/"},
                    "members": [
                        {"address": backend.ip, "protocol_port": 8080, "subnet_id": cloud.info["tenant_subnet_id"]}
                    ],
                },
            }
        ],
    )
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
    assert not mgmt, f"management ports are left: {mgmt}"
    width = max(len(k) for k in figures)
    print("\nlocal cloud, Octavia with namespace amphorae:")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    assert shutil.which("haproxy")
