"""The sample load balancers of the lab: their shapes (topology, listener), the body that creates one on the
local cloud, and seeding them behind floating IPs (``lbswap local up --sample N``, the demo, tier 3)."""

from __future__ import annotations

import time
from typing import Any

from lbswap.clouds.local import LocalCloud
from lbswap.errors import WaitFailed

# (name, topology, listener protocol, port)
SHAPES = (
    ("single-http", "SINGLE", "HTTP", 80),
    ("ha-http", "ACTIVE_STANDBY", "HTTP", 80),
    ("single-tcp", "SINGLE", "TCP", 5432),
)


def sample_shapes(n: int) -> list[tuple[str, str, str, int]]:
    """``lbswap local up --sample N``: web-1..N, alternating SINGLE HTTP, ACTIVE_STANDBY HTTP, SINGLE TCP."""
    return [(f"web-{i + 1}", *SHAPES[i % len(SHAPES)][1:]) for i in range(n)]


def lb_body(name: str, topology: str, protocol: str, port: int) -> dict[str, Any]:
    monitor = {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 2, "url_path": "/healthz"}
    if protocol == "TCP":
        monitor = {"type": "TCP", "delay": 1, "timeout": 1, "max_retries": 2}
    members = [{"address": f"10.0.1.{10 + i}", "protocol_port": 8080, "name": f"m{i}"} for i in range(2)]
    return {
        "name": name,
        "description": f"demo {topology} {protocol}",
        "vip_subnet_id": "subnet-tenant",
        "flavor_id": "flavor-ha" if topology == "ACTIVE_STANDBY" else "flavor-single",
        "provider": "amphora",
        "tags": ["demo"],
        "listeners": [
            {"name": protocol.lower(), "protocol": protocol, "protocol_port": port, "default_pool": {"name": "web"}}
        ],
        "pools": [
            {
                "name": "web",
                "protocol": protocol,
                "lb_algorithm": "ROUND_ROBIN",
                "members": members,
                "healthmonitor": monitor,
            }
        ],
    }


def seed(cloud: LocalCloud, names: list[tuple[str, str, str, int]], timeout: float = 90.0) -> dict[str, dict[str, Any]]:
    """Create the load balancers with a floating IP each; wait until all are ACTIVE with healthy members."""
    lbs: dict[str, dict[str, Any]] = {}
    for name, topology, protocol, port in names:
        summary = cloud.create_load_balancer(lb_body(name, topology, protocol, port))
        lbs[name] = {
            "id": summary.id,
            "topology": topology,
            "protocol": protocol,
            "port": port,
            "port_id": summary.vip_port_id,
        }
    deadline = time.monotonic() + timeout
    for info in lbs.values():
        while cloud.get_load_balancer(info["id"]).provisioning_status != "ACTIVE":
            if time.monotonic() > deadline or cloud.get_load_balancer(info["id"]).provisioning_status == "ERROR":
                raise WaitFailed(f"demo load balancer {info['id']} did not become ACTIVE (see worker.log)")
            time.sleep(0.2)
        fip = cloud.create_floating_ip(floating_network_id="public", port_id=info["port_id"], tags=["demo"])
        info["fip"] = fip.floating_ip_address
    for info in lbs.values():  # members healthy on every source, so the clones have something to match
        while any(m.operating_status != "ONLINE" for p in cloud.read_graph(info["id"]).pools for m in p.members):
            if time.monotonic() > deadline:
                raise WaitFailed(f"demo load balancer {info['id']}: members not ONLINE")
            time.sleep(0.2)
    return lbs
