"""Octavia as the simulator models it: the provisioning state machine, amphora images, quotas, and the
validation of a fully-populated create.

Changes put a load balancer in ``PENDING_*``; ``settle`` finishes them ``latency`` simulated seconds later
(Octavia's worker, run lazily at the start of every call).
"""

from __future__ import annotations

import time
from typing import Any

from lbswap.clouds.base import pool_ref, summary_of
from lbswap.clouds.base import validation_failure as _bad
from lbswap.clouds.fake.neutron import add_fixed_ip, new_port, release_ports, vip_ports
from lbswap.clouds.fake.store import DEFAULT_PROJECT, Session, new_id, request_id
from lbswap.errors import Conflict, NotFound, QuotaExceeded
from lbswap.model import LBSummary


def get_lb(state: Session, lb_id: str) -> dict[str, Any]:
    lb = state["lbs"].get(lb_id)
    if lb is None:
        raise NotFound(f"load balancer {lb_id} not found", status_code=404, request_id=request_id(state))
    return lb  # type: ignore[no-any-return]


def summary(lb: dict[str, Any]) -> LBSummary:
    return summary_of(lb)


# --- the state machine -------------------------------------------------------------------------------------


def check_mutable(lb: dict[str, Any]) -> None:
    if lb["provisioning_status"].startswith("PENDING_"):
        raise Conflict(
            f"load balancer {lb['id']} is immutable while {lb['provisioning_status']}; retry later", status_code=409
        )


def begin(state: Session, lb: dict[str, Any], pending: str) -> None:
    lb["provisioning_status"] = pending
    lb["_until"] = state["clock"] + state["latency"]
    if state["faults"].pop("error_status_pending", False):
        lb["_error"] = True


def settle(state: Session) -> None:
    """Finish every transition whose latency has passed (Octavia's worker, lazily)."""
    for lb in state.due(state["clock"]):
        until = lb.pop("_until")
        failed = lb.pop("_error", False)
        status = lb["provisioning_status"]
        if status == "PENDING_DELETE" and not failed:
            state["history"].append({"at": until, "lb": lb["id"], "status": "DELETED"})
            release_ports(state, vip_ports(lb))
            del state["lbs"][lb["id"]]
            continue
        if failed:
            state["history"].append({"at": until, "lb": lb["id"], "status": "ERROR"})
            lb["provisioning_status"] = "ERROR"
            lb["operating_status"] = "ERROR"
            lb.pop("_failover", None)
            continue
        for amp_id in lb.pop("_failover", []):
            _rebuild_amphora(state, lb, amp_id)
        lb["provisioning_status"] = "ACTIVE"
        lb["operating_status"] = "ONLINE"
        state["history"].append({"at": until, "lb": lb["id"], "status": "ACTIVE"})
        for pool in lb["pools"]:
            for member in pool["members"]:
                member["operating_status"] = "ONLINE" if pool.get("healthmonitor") else "NO_MONITOR"


def settle_now(state: Session) -> None:
    """Finish every transition at once (seeding)."""
    for lb in state["lbs"].values():
        lb["_until"] = state["clock"]
    settle(state)


# --- images ------------------------------------------------------------------------------------------------


def images(state: Session, tag: str) -> list[dict[str, Any]]:
    tagged = [i for i in state["images"] if tag in i["tags"]]
    return sorted(tagged, key=lambda i: i["created_at"], reverse=True)


def publish(state: Session, name: str, tags: list[str], **extra: Any) -> dict[str, Any]:
    """A new image (``extra``: e.g. a fault that every amphora booted from it shows, see probe.py)."""
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(state["clock"])) + f".{state['seq']:06d}"
    image = {"id": new_id(state, "image"), "name": name, "tags": tags, "created_at": created, **extra}
    state["images"].append(image)
    return image


def _boot_image(state: Session, lb: dict[str, Any]) -> str:
    tag = "amphora"
    if lb.get("flavor_id"):
        tag = state["flavors"][lb["flavor_id"]].get("amp_image_tag") or tag
    found = images(state, tag)
    return str(found[0]["id"]) if found else "no-image"


def _rebuild_amphora(state: Session, lb: dict[str, Any], amp_id: str) -> None:
    for amp in lb["amphorae"]:
        if amp["id"] == amp_id:
            amp["id"] = new_id(state, "amphora")
            amp["compute_id"] = new_id(state, "compute")
            amp["image_id"] = _boot_image(state, lb)
            amp.update(_born(state))
            amp["booted_at"] = state["clock"]  # a --fault-after fault of its image counts from here


CERT_VALIDITY = 30 * 86400.0  # what Octavia 19 gave an amphora certificate on the tier 2 stack


def _born(state: Session) -> dict[str, str]:
    """An amphora's created_at and certificate expiry, ISO 8601 in UTC as Octavia's amphora API gives them."""
    from datetime import UTC, datetime

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat()

    return {"created_at": iso(state["clock"]), "cert_expiration": iso(state["clock"] + CERT_VALIDITY)}


# --- quotas ------------------------------------------------------------------------------------------------


QUOTA_KINDS = ("load_balancer", "listener", "pool", "member", "health_monitor", "l7policy", "port", "floatingip")


def limits(state: Session, project_id: str) -> dict[str, int]:
    """Every kind's limit, -1 (unlimited) where none is set: Octavia and Neutron report every kind."""
    return {kind: int(state["quotas"].get(project_id, {}).get(kind, -1)) for kind in QUOTA_KINDS}


def usage(state: Session, project_id: str) -> dict[str, int]:
    counted = state.counts(f"usage:{project_id}")
    return {kind: counted.get(kind, 0) for kind in QUOTA_KINDS}


def _check_quota(state: Session, project_id: str, listeners: list[Any], pools: list[Any]) -> None:
    limits = state["quotas"].get(project_id, {})
    in_use = usage(state, project_id)
    wanted = {
        "load_balancer": 1,
        "listener": len(listeners),
        "pool": len(pools),
        "member": sum(len(p["members"]) for p in pools),
        "port": 1,
    }
    for kind, n in wanted.items():
        limit = limits.get(kind, -1)
        if limit >= 0 and in_use.get(kind, 0) + n > limit:
            raise QuotaExceeded(f"quota exceeded for {kind} in project {project_id}", status_code=403)


# --- fully-populated create ----------------------------------------------------------------------------------


def create(state: Session, body: dict[str, Any]) -> dict[str, Any]:
    """Validate a fully-populated create body as Octavia does, then add the load balancer in PENDING_CREATE.

    :raises CloudError: 400 for a body Octavia refuses, 409 for a taken or missing address.
    :raises QuotaExceeded: the project's quota would be exceeded.
    """
    project_id = body.get("project_id") or DEFAULT_PROJECT
    subnet_id = body.get("vip_subnet_id")
    if not subnet_id or subnet_id not in state["subnets"]:
        raise _bad(f"VIP subnet {subnet_id} not found")
    vip_subnets = [subnet_id, *(v.get("subnet_id") for v in body.get("additional_vips", []))]
    if len(set(vip_subnets)) < len(vip_subnets):
        raise _bad("Duplicate VIP subnet(s) specified. Only one IP can be bound per subnet.")
    flavor_id = body.get("flavor_id")
    topology = "SINGLE"
    if flavor_id:
        flavor = state["flavors"].get(flavor_id)
        if flavor is None:
            raise _bad(f"flavor {flavor_id} not found")
        topology = flavor.get("topology") or "SINGLE"
    provider_name = body.get("provider", "amphora")
    provider = state["providers"].get(provider_name)
    if provider is None:
        raise _bad(f"provider {provider_name} not found")
    pools, names = _pools_from_body(state, body.get("pools", []), provider)
    listeners = [_listener_from_body(state, li, names, provider) for li in body.get("listeners", [])]
    lb_id = new_id(state, "lb")
    _check_quota(state, project_id, listeners, pools)
    lb = _record(state, body, lb_id, project_id, topology)
    lb["listeners"], lb["pools"] = listeners, pools
    state["lbs"][lb_id] = lb
    roles = ["MASTER", "BACKUP"] if topology == "ACTIVE_STANDBY" else ["STANDALONE"]
    if provider_name == "amphora":
        image = _boot_image(state, lb)
        lb["amphorae"] = [
            {
                "id": new_id(state, "amphora"),
                "role": r,
                "image_id": image,
                "status": "ALLOCATED",
                "compute_id": "",
                **_born(state),
                "booted_at": state["clock"],
            }
            for r in roles
        ]
    begin(state, lb, "PENDING_CREATE")
    return lb


def _record(state: Session, body: dict[str, Any], lb_id: str, project_id: str, topology: str) -> dict[str, Any]:
    """The load balancer's own record, with its VIP ports allocated."""
    subnet_id = body["vip_subnet_id"]
    port = new_port(state, subnet_id, project_id, body.get("vip_address"))
    additional = []
    for extra in body.get("additional_vips", []):  # Octavia: extra fixed IPs on the main VIP port
        address = add_fixed_ip(state, port, extra["subnet_id"], extra.get("ip_address"))
        additional.append({"subnet_id": extra["subnet_id"], "ip_address": address, "port_id": port["id"]})
    return {
        "id": lb_id,
        "name": body.get("name", ""),
        "description": body.get("description", ""),
        "project_id": project_id,
        "vip_subnet_id": subnet_id,
        "vip_network_id": body.get("vip_network_id") or state["subnets"][subnet_id]["network_id"],
        "vip_address": port["ip"],
        "vip_port_id": port["id"],
        "vip_qos_policy_id": body.get("vip_qos_policy_id"),
        "additional_vips": additional,
        "availability_zone": body.get("availability_zone"),
        "flavor_id": body.get("flavor_id"),
        "provider": body.get("provider", "amphora"),
        "topology": topology,
        "admin_state_up": body.get("admin_state_up", True),
        "vip_sg_ids": body.get("vip_sg_ids"),
        "tags": list(body.get("tags", [])),
        "provisioning_status": "PENDING_CREATE",
        "operating_status": "OFFLINE",
        "listeners": [],
        "pools": [],
        "amphorae": [],
        "_conns": 0,
    }


def _pools_from_body(
    state: Session, bodies: list[dict[str, Any]], provider: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    pools, names = [], {}
    for body in bodies:
        name = body.get("name")
        if not name:
            raise _bad("pools in a fully-populated create must be named")
        if name in names:
            raise _bad(f"pool name {name} is defined twice")
        if body.get("lb_algorithm") not in provider["lb_algorithms"]:
            raise _bad(f"the provider does not support lb_algorithm {body.get('lb_algorithm')}")
        pool = {k: v for k, v in body.items() if k not in ("members", "healthmonitor")}
        pool["id"] = new_id(state, "pool")
        pool["members"] = [
            {**m, "id": new_id(state, "member"), "operating_status": "OFFLINE"} for m in body.get("members", [])
        ]
        if body.get("healthmonitor"):
            pool["healthmonitor"] = {**body["healthmonitor"], "id": new_id(state, "hm")}
        names[name] = pool["id"]
        pools.append(pool)
    return pools, names


def _listener_from_body(
    state: Session, body: dict[str, Any], names: dict[str, str], provider: dict[str, Any]
) -> dict[str, Any]:
    if body.get("protocol") not in provider["listener_protocols"]:
        raise _bad(f"the provider does not support listener protocol {body.get('protocol')}")
    for ref in [body.get("default_tls_container_ref"), *body.get("sni_container_refs", [])]:
        if ref and ref in state["unreadable_secrets"]:
            raise _bad(f"could not retrieve certificate {ref}")
    listener = {k: v for k, v in body.items() if k not in ("default_pool", "l7policies")}
    listener["id"] = new_id(state, "listener")
    listener["default_pool_id"] = pool_ref(names, body.get("default_pool"))
    policies = []
    for p in body.get("l7policies", []):
        policy = {k: v for k, v in p.items() if k not in ("redirect_pool", "rules")}
        policy["id"] = new_id(state, "l7policy")
        policy["redirect_pool_id"] = pool_ref(names, p.get("redirect_pool"))
        policy["rules"] = [{**r, "id": new_id(state, "l7rule")} for r in p.get("rules", [])]
        policies.append(policy)
    listener["l7policies"] = policies
    return listener
