"""Every client-visible address of a load balancer, and whether a strategy keeps it. Pure.

A floating IP moves with a fip-swap; a fixed VIP address never does. Octavia puts additional VIPs (often the
IPv6 half of a dual-stack load balancer) as extra fixed IPs on the main VIP port, and Neutron's floating IPs are
IPv4 only: one floating IP on the main VIP port does not keep the IPv6 address of the same port.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbswap.model import FloatingIP, LoadBalancer


@dataclass(frozen=True)
class Address:
    address: str | None
    subnet_id: str
    floating_ip: str | None
    kept: bool
    role: str  # "vip" | "additional"

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "subnet_id": self.subnet_id,
            "floating_ip": self.floating_ip,
            "kept": self.kept,
        }

    def describe(self) -> str:
        return f"{self.address or '(unknown)'} on subnet {self.subnet_id}"


def _fip_for(lb: LoadBalancer, address: str | None, port_id: str | None, main: bool) -> FloatingIP | None:
    for fip in lb.floating_ips:
        if address and fip.fixed_ip_address == address:
            return fip
    for fip in lb.floating_ips:  # matched by port: the main VIP (address unknown), or a VIP on its own port
        if not fip.port_id or fip.port_id != port_id:
            continue
        if main and not address:
            return fip
        if not fip.fixed_ip_address and (main or port_id != lb.vip_port_id):  # not an extra IP of the main port
            return fip
    return None


def client_addresses(lb: LoadBalancer, strategy: str | None) -> list[Address]:
    """The VIP and each additional VIP, with the floating IP in front of it, and whether ``strategy`` keeps
    the address clients use (for fip-swap: only those behind a floating IP)."""
    entries = [(lb.vip_address, lb.vip_subnet_id, lb.vip_port_id, "vip")]
    entries += [(v.ip_address, v.subnet_id, v.port_id or lb.vip_port_id, "additional") for v in lb.additional_vips]
    addresses = []
    for address, subnet, port, role in entries:
        fip = _fip_for(lb, address, port, role == "vip")
        if strategy == "failover":
            kept = True  # the same load balancer: every address stays
        elif strategy == "recreate":
            kept = True  # created again on the same addresses, once the source has released them
        else:
            kept = fip is not None
        addresses.append(Address(address, subnet, fip.floating_ip_address if fip else None, kept, role))
    return addresses


def changing(addresses: list[Address]) -> list[Address]:
    return [a for a in addresses if not a.kept]
