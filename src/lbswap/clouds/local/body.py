"""Validation of a fully-populated create body for the local cloud (what Octavia's API checks, for the
protocols and algorithms haproxy serves here): pools named and defined once, references resolved by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lbswap.clouds.base import pool_ref
from lbswap.clouds.base import validation_failure as _bad
from lbswap.clouds.local import state as st
from lbswap.errors import CloudError, Conflict


def listeners_and_pools(
    state: dict[str, Any], body: dict[str, Any], protocols: Sequence[str], algorithms: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pools, names = [], {}
    for pool_body in body.get("pools", []):
        name = pool_body.get("name")
        if not name:
            raise _bad("pools in a fully-populated create must be named")
        if name in names:
            raise _bad(f"pool name {name} is defined twice")
        if pool_body.get("protocol") not in protocols:
            raise _bad(f"the local cloud does not serve pool protocol {pool_body.get('protocol')}")
        if pool_body.get("lb_algorithm") not in algorithms:
            raise _bad(f"the provider does not support lb_algorithm {pool_body.get('lb_algorithm')}")
        if pool_body.get("tls_enabled"):
            raise _bad("TLS to members is not supported by the local cloud")
        pool = {k: v for k, v in pool_body.items() if k not in ("members", "healthmonitor")}
        pool["id"] = st.new_id(state)
        pool["members"] = [
            {**m, "id": st.new_id(state), "operating_status": "OFFLINE"} for m in pool_body.get("members", [])
        ]
        if pool_body.get("healthmonitor"):
            monitor = pool_body["healthmonitor"]
            if monitor.get("type") not in ("HTTP", "TCP", "PING"):
                raise _bad(f"health monitor type {monitor.get('type')} is not supported by the local cloud")
            pool["healthmonitor"] = {**monitor, "id": st.new_id(state)}
        names[name] = pool["id"]
        pools.append(pool)
    listeners = []
    ports = set()
    for listener_body in body.get("listeners", []):
        if listener_body.get("protocol") not in protocols:
            raise _bad(f"the local cloud does not serve listener protocol {listener_body.get('protocol')}")
        port = listener_body.get("protocol_port")
        if not isinstance(port, int) or port in ports:
            raise _bad(f"listener port {port} is missing or used twice")
        ports.add(port)
        if listener_body.get("l7policies"):
            raise _bad("L7 policies are not supported by the local cloud")
        listener = {k: v for k, v in listener_body.items() if k not in ("default_pool", "l7policies")}
        listener["id"] = st.new_id(state)
        listener["default_pool_id"] = pool_ref(names, listener_body.get("default_pool"))
        listener["l7policies"] = []
        listeners.append(listener)
    return listeners, pools


def new_lb(
    state: dict[str, Any], body: dict[str, Any], prefix: str, protocols: Sequence[str], algorithms: Sequence[str]
) -> dict[str, Any]:
    """A load balancer record (``PENDING_CREATE``) from a fully-populated create body, with its VIP port and
    amphorae allocated; validated like Octavia's API does (400 ``Validation failure``, 409 on a taken VIP)."""
    topology = _topology(state, body)
    flavor_id = body.get("flavor_id")
    listeners, pools = listeners_and_pools(state, body, protocols, algorithms)
    address = _vip_address(state, body)
    project_id = body.get("project_id") or st.PROJECT
    port = {"id": st.new_id(state), "ip": address, "project_id": project_id, "subnet_id": st.SUBNET_ID}
    lb: dict[str, Any] = {
        "id": st.new_id(state),
        "name": body.get("name", ""),
        "description": body.get("description", ""),
        "project_id": project_id,
        "vip_subnet_id": st.SUBNET_ID,
        "vip_network_id": body.get("vip_network_id") or st.NETWORK_ID,
        "vip_address": address,
        "vip_port_id": port["id"],
        "vip_qos_policy_id": body.get("vip_qos_policy_id"),
        "additional_vips": [],
        "availability_zone": body.get("availability_zone"),
        "flavor_id": flavor_id,
        "provider": "amphora",
        "topology": topology,
        "admin_state_up": body.get("admin_state_up", True),
        "vip_sg_ids": body.get("vip_sg_ids"),
        "tags": list(body.get("tags", [])),
        "provisioning_status": "PENDING_CREATE",
        "operating_status": "OFFLINE",
        "listeners": listeners,
        "pools": pools,
        "amphorae": [],
    }
    port["lb_id"] = lb["id"]
    if topology == "ACTIVE_STANDBY":
        used = {other.get("vrid") for other in state["lbs"].values()}
        lb["vrid"] = next(n for n in range(1, 256) if n not in used)
    roles = ["MASTER", "BACKUP"] if topology == "ACTIVE_STANDBY" else ["STANDALONE"]
    state["lbs"][lb["id"]] = lb
    state["ports"][port["id"]] = port
    for role in roles:
        lb["amphorae"].append(st.new_amphora(state, lb, role, prefix))
    return lb


def _topology(state: dict[str, Any], body: dict[str, Any]) -> str:
    """The topology of the create body's flavor, once its VIP, provider and flavor are checked (400)."""
    if body.get("vip_subnet_id") != st.SUBNET_ID:
        raise _bad(f"VIP subnet {body.get('vip_subnet_id')} not found (the local cloud has {st.SUBNET_ID})")
    if body.get("provider", "amphora") != "amphora":
        raise _bad(f"provider {body.get('provider')} not found")
    if body.get("additional_vips"):
        raise _bad("additional VIPs are not supported by the local cloud")
    flavor_id = body.get("flavor_id")
    if not flavor_id:
        return "SINGLE"
    if flavor_id not in state["flavors"]:
        raise _bad(f"flavor {flavor_id} not found")
    return str(state["flavors"][flavor_id].get("topology") or "SINGLE")


def _vip_address(state: dict[str, Any], body: dict[str, Any]) -> str:
    """The VIP address asked for (409 when taken) or the next free one (409 when the subnet is full)."""
    taken = {p["ip"] for p in state["ports"].values()}
    address: str | None = body.get("vip_address")
    if address:
        if address in taken:
            raise Conflict(f"IP address {address} is already allocated in subnet {st.SUBNET_ID}", status_code=409)
        return address
    try:
        return st.free_address(taken, st.VIP_NET)
    except LookupError:
        raise CloudError(f"no more IP addresses available on subnet {st.SUBNET_ID}", status_code=409) from None
