"""Neutron as the simulator models it: subnets with a capacity, VIP ports, floating IPs with revisions.

A load balancer's connections arrive through its floating IPs; once the last one left, they drain.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from lbswap.clouds.fake.store import EXTERNAL_NETWORK, new_id, request_id
from lbswap.errors import CloudError, Conflict, NotFound


def get_fip(state: dict[str, Any], fip_id: str) -> dict[str, Any]:
    fip = state["fips"].get(fip_id)
    if fip is None:
        raise NotFound(f"floating IP {fip_id} not found", status_code=404, request_id=request_id(state))
    return fip  # type: ignore[no-any-return]


def vip_ports(lb: dict[str, Any]) -> set[str]:
    ports = {lb["vip_port_id"]}
    ports.update(v["port_id"] for v in lb["additional_vips"] if v.get("port_id"))
    return ports


def _fixed_ips(port: dict[str, Any]) -> list[tuple[str, str]]:
    """(subnet, address) of every fixed IP of a port: its first, then any extra (additional VIPs)."""
    return [(port["subnet_id"], port["ip"]), *((e["subnet_id"], e["ip"]) for e in port.get("extra_ips", ()))]


def subnet_used(state: dict[str, Any], subnet_id: str) -> int:
    used = sum(1 for p in state["ports"].values() for subnet, _ip in _fixed_ips(p) if subnet == subnet_id)
    return used + int(state["subnets"][subnet_id].get("reserved", 0))


def _allocate(state: dict[str, Any], subnet_id: str, address: str | None) -> str:
    subnet = state["subnets"].get(subnet_id)
    if subnet is None:
        raise CloudError(f"VIP subnet {subnet_id} not found", status_code=400)
    taken = {ip for p in state["ports"].values() for s, ip in _fixed_ips(p) if s == subnet_id}
    if address is not None:
        if address in taken:
            raise Conflict(f"IP address {address} is already allocated in subnet {subnet_id}", status_code=409)
        return address
    if subnet_used(state, subnet_id) >= subnet["capacity"]:
        raise CloudError(f"no more IP addresses available on subnet {subnet_id}", status_code=409)
    network = ipaddress.ip_network(subnet["cidr"])
    return next(str(h) for h in network.hosts() if str(h) not in taken and not str(h).endswith((".1", "::1")))


def new_port(state: dict[str, Any], subnet_id: str, project_id: str, address: str | None) -> dict[str, Any]:
    address = _allocate(state, subnet_id, address)
    port = {"id": new_id(state, "port"), "subnet_id": subnet_id, "ip": address, "project_id": project_id}
    state["ports"][port["id"]] = port
    return port


def add_fixed_ip(state: dict[str, Any], port: dict[str, Any], subnet_id: str, address: str | None) -> str:
    """Another fixed IP on a port, as Octavia puts an additional VIP on the main VIP port. Octavia requires
    the additional VIP's subnet to be on the VIP's network."""
    subnet = state["subnets"].get(subnet_id)
    main = state["subnets"][port["subnet_id"]]
    if subnet is not None and subnet["network_id"] != main["network_id"]:
        raise CloudError(
            f"Validation failure: additional VIP subnet {subnet_id} is not on the VIP network {main['network_id']}",
            status_code=400,
        )
    address = _allocate(state, subnet_id, address)
    port.setdefault("extra_ips", []).append({"subnet_id": subnet_id, "ip": address})
    return address


def release_ports(state: dict[str, Any], ports: set[str]) -> None:
    """Delete ports; Neutron disassociates a floating IP whose port goes away."""
    for fip in state["fips"].values():
        if fip["port_id"] in ports:
            fip["port_id"] = None
            fip["fixed_ip_address"] = None
            fip["revision_number"] += 1
    for port in ports:
        state["ports"].pop(port, None)


def new_fip(
    state: dict[str, Any], port_id: str | None, fixed: str | None, tags: list[str], project_id: str
) -> dict[str, Any]:
    n = len(state["fips"]) + state["seq"]
    fip = {
        "id": new_id(state, "fip"),
        "floating_ip_address": f"203.0.{(n // 250) % 250}.{n % 250 + 2}",
        "port_id": port_id,
        "fixed_ip_address": fixed,
        "revision_number": 1,
        "floating_network_id": EXTERNAL_NETWORK,
        "tags": tags,
        "project_id": project_id,
    }
    state["fips"][fip["id"]] = fip
    return fip


def move(state: dict[str, Any], fip: dict[str, Any], port_id: str | None, fixed: str | None) -> None:
    """Point a floating IP elsewhere; the load balancer it leaves starts draining."""
    for lb in state["lbs"].values():
        if fip["port_id"] in vip_ports(lb) and port_id not in vip_ports(lb):
            lb["_drain_from"] = state["clock"]
    fip["port_id"] = port_id
    fip["fixed_ip_address"] = fixed
    fip["revision_number"] += 1


def active_connections(state: dict[str, Any], lb: dict[str, Any]) -> int:
    """Connections reach a load balancer through its floating IPs; after the last one left, they drain."""
    ports = vip_ports(lb)
    if any(f["port_id"] in ports for f in state["fips"].values()):
        return int(lb["_conns"])
    start = lb.get("_drain_from")
    if start is None:
        return 0
    seen_at = state["clock"] - state["stats_lag"]
    left = 1.0 - (seen_at - start) / max(state["drain_seconds"], 1e-9)
    return max(0, min(int(lb["_conns"]), int(lb["_conns"] * left + 0.999)))
