"""What the local cloud's tests share: the cloud (its SDK connection and cloud.json), namespaces plugged on its
networks, and an HTTP load balancer to create and wait for (a real cloud: waits take real time)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lbswap.localcloud import guests
from lbswap.localcloud.guests import Guest

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


@pytest.fixture
def plug(cloud: Cloud) -> Iterator[Callable[[str], Guest]]:
    """Namespaces on the tenant network as Neutron ports (ACTIVE when made)."""
    made: list[Guest] = []

    def make(prefix: str) -> Guest:
        made.append(guests.plug_tenant(cloud.conn, cloud.info, prefix, PROJECT))
        return made[-1]

    yield make
    for guest in made:
        guests.remove(cloud.conn, cloud.info, guest)


@pytest.fixture
def external_client(cloud: Cloud) -> Iterator[Guest]:
    """A namespace on the external bridge (no Neutron port): the upstream side, holding the gateway address."""
    guest = guests.plug_external(cloud.info)
    yield guest
    guests.remove(None, cloud.info, guest)


def http_get(client: Guest, address: str, port: int = 80) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", client.ns, "curl", "-s", "-m", "2", f"http://{address}:{port}/"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return proc.stdout.strip()


def create_http_lb(cloud: Cloud, name: str, backend: Guest, suffix: str = "") -> Any:
    """A load balancer, fully populated: an HTTP listener on port 80, a pool with a health monitor, one member."""
    return cloud.conn.load_balancer.create_load_balancer(
        name=name,
        project_id=PROJECT,
        vip_subnet_id=cloud.info["tenant_subnet_id"],
        listeners=[
            {
                "name": f"lc-http{suffix}",
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {
                    "name": f"lc-pool{suffix}",
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


def wait_lb_online(cloud: Cloud, lb_id: str) -> None:
    wait_until("ACTIVE", lambda: cloud.lb(lb_id).provisioning_status in ("ACTIVE", "ERROR"))
    assert cloud.lb(lb_id).provisioning_status == "ACTIVE", "the load balancer went ERROR (worker log)"
    wait_until("ONLINE from heartbeats", lambda: cloud.lb(lb_id).operating_status == "ONLINE")
