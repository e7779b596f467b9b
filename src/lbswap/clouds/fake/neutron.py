"""Neutron as the simulator models it: subnets with a capacity, VIP ports, floating IPs with revisions.

A load balancer's connections arrive through its floating IPs; once the last one left, they drain. A floating
IP's data plane follows a move ``fip_lag`` simulated seconds after the API answered (Neutron's L3 agent
rewrites its NAT rules after the PUT returned: 0.6-1.3 s on a real one); until then new connections through
it still reach the port it left (:func:`dataplane_port`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from lbswap.clouds.fake.store import EXTERNAL_NETWORK, Session, fixed_ips, new_id, request_id
from lbswap.errors import CloudError, Conflict, NotFound


def get_fip(state: Session, fip_id: str) -> dict[str, Any]:
    fip = state["fips"].get(fip_id)
    if fip is None:
        raise NotFound(f"floating IP {fip_id} not found", status_code=404, request_id=request_id(state))
    return fip  # type: ignore[no-any-return]


def vip_ports(lb: dict[str, Any]) -> set[str]:
    ports = {lb["vip_port_id"]}
    ports.update(v["port_id"] for v in lb["additional_vips"] if v.get("port_id"))
    return ports


def subnet_used(state: Session, subnet_id: str) -> int:
    """Fixed IPs taken on the subnet (every fixed IP of every port counts) and its reserved addresses."""
    return state.count("subnet", subnet_id) + int(state["subnets"][subnet_id].get("reserved", 0))


def _taken(state: Session, subnet_id: str, address: str) -> bool:
    """Without reading the port (a scan over taken addresses once read every port it met, and each check wrote
    every record read so far: a port's allocation grew with the fleet, 1.6 s at 4,000 load balancers)."""
    return state.indexed("ports", "port.ip", f"{subnet_id}|{address}")


def _offset(cidr: str, address: str) -> int:
    """An address's position in its subnet (small enough for an SQLite integer, IPv6 too)."""
    return int(ipaddress.ip_address(address)) - int(ipaddress.ip_network(cidr).network_address)


def _first_free(state: Session, subnet_id: str, cidr: str) -> str:
    """The lowest free host address (never a .1 or ::1, the router's), from the subnet's low-water mark (an
    offset in the subnet): every address below it is taken, so the scan does not grow with the number of ports."""
    network = ipaddress.ip_network(cidr)
    base = int(network.network_address)
    last = network.num_addresses - (2 if network.version == 4 else 1)
    offset = max(1, state.count("ip-free-from", subnet_id))
    while offset <= last:
        address = str(ipaddress.ip_address(base + offset))
        if not address.endswith((".1", "::1")) and not _taken(state, subnet_id, address):
            state.set_count("ip-free-from", subnet_id, offset + 1)
            return address
        offset += 1
    raise CloudError(f"no more IP addresses available on subnet {subnet_id}", status_code=409)


def _allocate(state: Session, subnet_id: str, address: str | None) -> str:
    subnet = state["subnets"].get(subnet_id)
    if subnet is None:
        raise CloudError(f"VIP subnet {subnet_id} not found", status_code=400)
    if address is not None:
        if _taken(state, subnet_id, address):
            raise Conflict(f"IP address {address} is already allocated in subnet {subnet_id}", status_code=409)
        return address
    if subnet_used(state, subnet_id) >= subnet["capacity"]:
        raise CloudError(f"no more IP addresses available on subnet {subnet_id}", status_code=409)
    return _first_free(state, subnet_id, subnet["cidr"])


def new_port(state: Session, subnet_id: str, project_id: str, address: str | None) -> dict[str, Any]:
    address = _allocate(state, subnet_id, address)
    port = {"id": new_id(state, "port"), "subnet_id": subnet_id, "ip": address, "project_id": project_id}
    state["ports"][port["id"]] = port
    return port


def add_fixed_ip(state: Session, port: dict[str, Any], subnet_id: str, address: str | None) -> str:
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
    state["ports"][port["id"]] = port  # the record changed: written back (and re-indexed) at flush
    return address


def release_ports(state: Session, ports: set[str]) -> None:
    """Delete ports; Neutron disassociates a floating IP whose port goes away."""
    for port_id in ports:
        for fip in state.find("fips", "fip.port", port_id):
            fip["port_id"] = None
            fip["fixed_ip_address"] = None
            fip["revision_number"] += 1
    for port_id in ports:
        port = state["ports"].pop(port_id, None)
        for subnet_id, address in fixed_ips(port) if port is not None else ():
            subnet = state["subnets"].get(subnet_id)
            if subnet is None:
                continue
            offset = _offset(subnet["cidr"], address)
            if 0 <= offset < state.count("ip-free-from", subnet_id):
                state.set_count("ip-free-from", subnet_id, offset)


def new_fip(state: Session, port_id: str | None, fixed: str | None, tags: list[str], project_id: str) -> dict[str, Any]:
    n = len(state["fips"]) + state["seq"]
    fip = {
        "id": new_id(state, "fip"),
        "floating_ip_address": f"203.{n // 62500 % 256}.{(n // 250) % 250}.{n % 250 + 2}",  # unique at 10,000s
        "port_id": port_id,
        "fixed_ip_address": fixed,
        "revision_number": 1,
        "floating_network_id": EXTERNAL_NETWORK,
        "tags": tags,
        "project_id": project_id,
    }
    state["fips"][fip["id"]] = fip
    return fip


def move(state: Session, fip: dict[str, Any], port_id: str | None, fixed: str | None) -> None:
    """Point a floating IP elsewhere; the load balancer it leaves starts draining once the data plane followed
    (``fip_lag`` seconds later)."""
    now = float(state["clock"])
    lag = float(state.get("fip_lag") or 0.0)
    if fip["port_id"]:
        for lb in state.find("lbs", "lb.port", fip["port_id"]):
            if port_id not in vip_ports(lb):
                lb["_drain_from"] = now + lag
    if lag > 0 or "_dataplane_until" in fip:
        fip["_dataplane_port"] = dataplane_port(fip, now)  # where new connections go until the agent catches up
        fip["_dataplane_until"] = now + lag
    fip["port_id"] = port_id
    fip["fixed_ip_address"] = fixed
    fip["revision_number"] += 1


def dataplane_port(fip: dict[str, Any], now: float) -> str | None:
    """The port new connections through the floating IP reach at ``now``: the one the API says, or for
    ``fip_lag`` seconds after a move the one it left."""
    if now < float(fip.get("_dataplane_until", 0.0)):
        port: str | None = fip.get("_dataplane_port")
        return port
    current: str | None = fip["port_id"]
    return current


def fips_of(state: Session, lb: dict[str, Any]) -> list[dict[str, Any]]:
    """The floating IPs pointing at one of the load balancer's VIP ports."""
    return [fip for port in sorted(vip_ports(lb)) for fip in state.find("fips", "fip.port", port)]


def active_connections(state: Session, lb: dict[str, Any]) -> int:
    """Connections reach a load balancer through its floating IPs; after the last one left, they drain."""
    if fips_of(state, lb):
        return int(lb["_conns"])
    start = lb.get("_drain_from")
    if start is None:
        return 0
    seen_at = state["clock"] - state["stats_lag"]
    left = 1.0 - (seen_at - start) / max(state["drain_seconds"], 1e-9)
    return max(0, min(int(lb["_conns"]), int(lb["_conns"] * left + 0.999)))
