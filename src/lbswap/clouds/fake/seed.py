"""Seeding: a new simulated cloud, either varied sample load balancers or a copy of an ``lbswap snapshot``."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Sequence
from typing import Any

from lbswap.clouds.fake.neutron import new_fip
from lbswap.clouds.fake.octavia import create, publish, settle_now
from lbswap.clouds.fake.store import DEFAULT_PROJECT, Session, new_cloud
from lbswap.model import LoadBalancer


def base_state(state: Session, *, lbs: int = 0) -> None:
    """An empty cloud with two subnets, two flavors and one old amphora image, and a new identity. The tenant
    subnet is a /22 (1000 addresses), a /16 when ``lbs`` load balancers and clones at once would not fit."""
    state["cloud_id"] = uuid.uuid4().hex
    tenant = ("10.0.0.0/22", 1000) if lbs <= 800 else ("10.0.0.0/16", 65000)
    state["subnets"] = {
        "subnet-tenant": {"network_id": "net-tenant", "cidr": tenant[0], "capacity": tenant[1], "reserved": 0},
        "subnet-extra": {"network_id": "net-extra", "cidr": "10.1.0.0/22", "capacity": 1000, "reserved": 0},
    }
    state["flavors"] = {
        "flavor-single": {"id": "flavor-single", "name": "single", "provider": "amphora", "topology": "SINGLE"},
        "flavor-ha": {"id": "flavor-ha", "name": "ha", "provider": "amphora", "topology": "ACTIVE_STANDBY"},
    }
    state["quotas"] = {}
    old = publish(state, "amphora-2026-10", ["amphora"])
    old["created_at"] = "2026-10-01T00:00:00"


def sample_body(rng: random.Random, index: int, *, topology: str, with_l7: bool) -> dict[str, Any]:
    """A varied, realistic load balancer graph as a fully-populated create body."""
    members = [
        {"address": f"10.0.{index % 4}.{10 + j}", "protocol_port": 8080, "weight": 1 + j, "name": f"web-{j}"}
        for j in range(rng.randint(1, 3))
    ]
    if rng.random() < 0.3:
        members.append({"address": f"10.0.{index % 4}.99", "protocol_port": 8080, "backup": True, "name": "spare"})
    pools: list[dict[str, Any]] = [
        {
            "name": "web",
            "protocol": "HTTP",
            "lb_algorithm": rng.choice(["ROUND_ROBIN", "LEAST_CONNECTIONS"]),
            "members": members,
            "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3, "url_path": "/healthz"},
            "session_persistence": {"type": "HTTP_COOKIE"} if rng.random() < 0.3 else None,
        }
    ]
    listeners: list[dict[str, Any]] = [
        {
            "name": "http",
            "protocol": "HTTP",
            "protocol_port": 80,
            "default_pool": {"name": "web"},
            "timeout_client_data": rng.choice([50000, 120000]),
            "allowed_cidrs": ["0.0.0.0/0"] if rng.random() < 0.5 else None,
            "insert_headers": {"X-Forwarded-For": "true"},
        }
    ]
    if with_l7:
        pools.append({"name": "api", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": members[:1]})
        listeners[0]["l7policies"] = [
            {
                "name": "to-api",
                "action": "REDIRECT_TO_POOL",
                "position": 1,
                "redirect_pool": {"name": "api"},
                "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}],
            }
        ]
    if rng.random() < 0.3:
        pools.append({"name": "tcp", "protocol": "TCP", "lb_algorithm": "SOURCE_IP", "members": members})
        listeners.append({"name": "tcp", "protocol": "TCP", "protocol_port": 5432, "default_pool": {"name": "tcp"}})
    for pool in pools:
        if pool.get("session_persistence") is None:
            pool.pop("session_persistence", None)
    return {
        "name": f"web-{index:03d}",
        "description": f"sample load balancer {index}",
        "project_id": DEFAULT_PROJECT,
        "vip_subnet_id": "subnet-tenant",
        "flavor_id": "flavor-ha" if topology == "ACTIVE_STANDBY" else "flavor-single",
        "provider": "amphora",
        "tags": ["env=prod"] if index % 2 else ["env=staging"],
        "listeners": listeners,
        "pools": pools,
    }


def seed_sample(path: str | os.PathLike[str], n: int, seed: int = 0) -> list[str]:
    """A new simulated cloud with ``n`` varied load balancers on an old image; returns their ids.

    Mix: most SINGLE with a floating IP, some ACTIVE_STANDBY with one, and a few without any floating IP.
    """
    rng = random.Random(seed)
    ids = []
    with new_cloud(path) as state:
        base_state(state, lbs=n)
        for index in range(n):
            kind = index % 10
            topology = "ACTIVE_STANDBY" if kind in (6, 7, 8) else "SINGLE"
            body = sample_body(rng, index, topology=topology, with_l7=kind in (1, 4, 7))
            lb = create(state, body)
            lb["_conns"] = rng.randint(1, 20)
            if kind not in (8, 9):
                new_fip(state, lb["vip_port_id"], lb["vip_address"], [], lb["project_id"])
            ids.append(lb["id"])
            state.forget_clean()
        settle_now(state)
    return ids


def _cidr_around(address: str | None) -> str:
    """A subnet that holds ``address``: a /16 for IPv4, a /64 for IPv6 (10.9.0.0/16 when unknown)."""
    import ipaddress

    if not address:
        return "10.9.0.0/16"
    ip = ipaddress.ip_address(address)
    return str(ipaddress.ip_network(f"{address}/{64 if ip.version == 6 else 16}", strict=False))


def seed_from_snapshot(path: str | os.PathLike[str], graphs: Sequence[LoadBalancer]) -> list[str]:
    """A new simulated cloud holding the load balancers of an ``lbswap snapshot`` (same ids, names, graphs
    and floating IP addresses), so an operator can rehearse a campaign on a copy of their own."""
    from lbswap.clone import build_clone_body  # the create body is exactly what a clone needs

    ids = []
    with new_cloud(path) as state:
        base_state(state)
        for graph in graphs:
            body = build_clone_body(graph, campaign_id="seed", name=graph.name, vip_address=graph.vip_address)
            _add_from_graph(state, graph, body)
            ids.append(graph.id)
            state.forget_clean()
        settle_now(state)
    return ids


def _add_from_graph(state: Session, graph: LoadBalancer, body: dict[str, Any]) -> None:
    """One load balancer of a snapshot, with its ids, subnets, addresses, topology and floating IPs."""
    network = graph.vip_network_id or "net-" + graph.vip_subnet_id
    vips = [(graph.vip_subnet_id, graph.vip_address), *((v.subnet_id, v.ip_address) for v in graph.additional_vips)]
    for subnet_id, address in vips:  # the snapshot's subnets, IPv6 included, on the VIP's network
        subnet = {"network_id": network, "cidr": _cidr_around(address), "capacity": 60000}
        state["subnets"].setdefault(subnet_id, subnet)
    if graph.flavor_id and graph.flavor_id not in state["flavors"]:
        state["flavors"][graph.flavor_id] = {
            "id": graph.flavor_id,
            "name": graph.flavor_id,
            "provider": graph.provider,
            "topology": graph.topology,
        }
    state["providers"].setdefault(graph.provider, state["providers"]["amphora"])
    if graph.additional_vips:  # the snapshot's own addresses (build_clone_body keeps them with vip_address)
        body["additional_vips"] = [
            {"subnet_id": v.subnet_id, **({"ip_address": v.ip_address} if v.ip_address else {})}
            for v in graph.additional_vips
        ]
    if not graph.flavor_id and graph.topology != "SINGLE":  # Octavia takes the topology from a flavor
        flavor_id = f"seed-{graph.topology.lower()}"
        state["flavors"].setdefault(
            flavor_id,
            {"id": flavor_id, "name": flavor_id, "provider": graph.provider, "topology": graph.topology},
        )
        body["flavor_id"] = flavor_id
    body["tags"] = list(graph.tags)
    body["project_id"] = graph.project_id or DEFAULT_PROJECT
    lb = create(state, body)
    # keep the operator's ids, so that their runbooks and selections work on the copy
    del state["lbs"][lb["id"]]
    lb["id"] = graph.id
    state["lbs"][graph.id] = lb
    lb["_conns"] = 5
    for fip in graph.floating_ips:
        fixed = fip.fixed_ip_address if fip.fixed_ip_address else lb["vip_address"]
        record = new_fip(state, lb["vip_port_id"], fixed, list(fip.tags), lb["project_id"])
        del state["fips"][record["id"]]
        record.update(id=fip.id, floating_ip_address=fip.floating_ip_address)
        state["fips"][fip.id] = record
