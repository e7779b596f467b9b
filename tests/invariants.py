"""Check invariants I1-I8 on a fake cloud, from its final state and its audit of every call.

``before`` is the fake state (``FakeCloud.snapshot_state()``) taken before the campaign, ``after`` the state
after it ended. ``check`` follows one swap through its audit (``swap`` is the swap's result JSON);
``check_fleet`` holds for a whole fleet after any sequence of commands, and ``check_status`` holds the
journal's view (``lbswap status``) to the cloud's. Each raises AssertionError naming the invariant.
"""

from __future__ import annotations

from typing import Any

from lbswap import clone
from lbswap.model import MARKER_CLONE_OF, MARKER_TEMP_FIP, LoadBalancer, from_json


def _graph(state: dict[str, Any], lb_id: str) -> LoadBalancer:
    lb = state["lbs"][lb_id]
    data = {k: v for k, v in lb.items() if not k.startswith("_")}
    ports = {lb["vip_port_id"], *(v["port_id"] for v in lb["additional_vips"])}
    data["floating_ips"] = [f for f in state["fips"].values() if f["port_id"] in ports]
    return from_json(LoadBalancer, data)


def _ports(lb: dict[str, Any]) -> set[str]:
    return {lb["vip_port_id"], *(v["port_id"] for v in lb["additional_vips"])}


def check(before: dict[str, Any], after: dict[str, Any], source_id: str, swap: dict[str, Any]) -> None:
    state, strategy = swap["state"], swap["strategy"]
    assert state in ("done", "rolled_back"), f"swap ended {state}: {swap['error']}"
    source = before["lbs"][source_id]
    source_ports = _ports(source)
    source_fips = [f for f in before["fips"].values() if f["port_id"] in source_ports]
    clones_made = [
        a for a in after["audit"] if a["call"] == "create_load_balancer" and MARKER_CLONE_OF + source_id in a["tags"]
    ]
    clone_ids = {lb_id for lb_id, lb in after["lbs"].items() if MARKER_CLONE_OF + source_id in lb["tags"]}
    history = after.get("history", [])
    # clone ports over the whole run, from the audit of moves and the final state
    audit = after["audit"][len(before["audit"]) :]
    moves = [a for a in audit if a["call"] == "move_floating_ip"]
    source_deleted_at = next(
        (i for i, a in enumerate(audit) if a["call"] == "delete_load_balancer" and a["lb_id"] == source_id), None
    )

    # I1: a floating IP of the source only ever points at the source VIP or the clone VIP, never at nothing
    fip_ids = {f["id"] for f in source_fips}
    for move in moves:
        if move["fip_id"] in fip_ids:
            assert move["port_id"], "I1: a floating IP was disassociated"
    for fip in source_fips:
        now = after["fips"].get(fip["id"])
        assert now is not None, "I1: a floating IP disappeared"
        assert now["port_id"] is not None, f"I1: floating IP {fip['floating_ip_address']} points at nothing"

    # I2: a move to a clone port only after that clone was ACTIVE
    active_at: dict[str, float] = {}
    for event in history:
        if event["status"] == "ACTIVE":
            active_at.setdefault(event["lb"], event["at"])
    for move in moves:
        if move["fip_id"] in fip_ids and move["port_id"] not in source_ports:
            owners = [h["lb"] for h in history if h["lb"] != source_id]
            assert any(active_at.get(o, float("inf")) <= move["at"] for o in owners), "I2: flip before clone ACTIVE"

    # I3: the source is deleted only after every floating IP moved to the clone, and none moved back after
    if source_deleted_at is not None and strategy == "fip-swap":
        flips_before = [m for m in audit[:source_deleted_at] if m["call"] == "move_floating_ip"]
        moved = {m["fip_id"] for m in flips_before if m["port_id"] not in source_ports}
        assert moved >= fip_ids, "I3: source deleted before every floating IP moved"
        assert not [
            m for m in audit[source_deleted_at:] if m["call"] == "move_floating_ip" and m["port_id"] in source_ports
        ], "I3: a floating IP moved back to a retired source"

    # I4: nothing orphaned: no temporary floating IP, no port without its load balancer
    live_ports = set().union(*(_ports(lb) for lb in after["lbs"].values())) if after["lbs"] else set()
    assert set(after["ports"]) == live_ports, f"I4: leaked ports {set(after['ports']) - live_ports}"
    assert not [f for f in after["fips"].values() if MARKER_TEMP_FIP in f["tags"]], "I4: temporary floating IP left"
    for lb in after["lbs"].values():
        assert not lb["provisioning_status"].startswith("PENDING"), f"I4: {lb['id']} left {lb['provisioning_status']}"

    if state == "rolled_back":
        assert source_id in after["lbs"], "rolled back but the source is gone"
        assert not clone_ids, f"I4: clone(s) {clone_ids} left after a rollback"
        for fip in source_fips:
            assert after["fips"][fip["id"]]["port_id"] == fip["port_id"], "rolled back but a FIP is not on the source"
        # I7: the source is unchanged
        assert clone.comparable(_graph(after, source_id)) == clone.comparable(_graph(before, source_id)), "I7"
        assert after["lbs"][source_id]["name"] == source["name"], "I7: source renamed"
        return

    # done
    if strategy == "failover":
        assert source_id in after["lbs"], "failover lost the load balancer"
        assert after["lbs"][source_id]["provisioning_status"] == "ACTIVE"
        newest = max((i for i in after["images"] if "amphora" in i["tags"]), key=lambda i: i["created_at"])
        assert {a["image_id"] for a in after["lbs"][source_id]["amphorae"]} == {newest["id"]}, "not upgraded"
        return
    assert source_id not in after["lbs"], "done but the source is not retired"
    assert len(clone_ids) == 1, f"I4/I6: expected one clone, found {clone_ids}"
    (clone_id,) = clone_ids
    assert swap["clone_id"] == clone_id
    if strategy == "fip-swap":
        # I6: the clone was created once, however often the step ran
        assert len(clones_made) == 1, f"I6: {len(clones_made)} creates for one clone"
        for fip in source_fips:
            assert after["fips"][fip["id"]]["port_id"] in _ports(after["lbs"][clone_id]), "FIP not on the clone"
        # I7: before the retire nothing touched the source
        touched = [a for a in audit[:source_deleted_at] if a.get("lb_id") == source_id]
        assert not touched, f"I7: {touched}"
    else:  # recreate: same address
        assert after["lbs"][clone_id]["vip_address"] == source["vip_address"]
    # I5: the clone's graph equals the source's
    assert clone.comparable(_graph(after, clone_id), ignore_name=True) == clone.comparable(
        _graph(before, source_id), ignore_name=True
    ), "I5"


def _source_of(lb: dict[str, Any]) -> str | None:
    return next((t[len(MARKER_CLONE_OF) :] for t in lb["tags"] if t.startswith(MARKER_CLONE_OF)), None)


def _successor(after: dict[str, Any], lb_id: str) -> str | None:
    """The load balancer that now stands for ``lb_id``: itself, or the newest clone in its clone-of chain."""
    seen = set()
    while lb_id not in after["lbs"]:
        clones = [i for i, lb in after["lbs"].items() if _source_of(lb) == lb_id]
        if len(clones) != 1 or lb_id in seen:
            return None
        seen.add(lb_id)
        lb_id = clones[0]
    return lb_id


def clones_beside_sources(state: dict[str, Any]) -> dict[str, str]:
    """Clone id -> source id, for every clone whose source still exists (a swap under way or unfinished)."""
    sources = {lb_id: _source_of(lb) for lb_id, lb in state["lbs"].items()}
    return {lb_id: source for lb_id, source in sources.items() if source and source in state["lbs"]}


def check_fleet(before: dict[str, Any], after: dict[str, Any]) -> None:
    """What an operator must be able to count on, whatever ran and whatever interrupted it.

    Every floating IP that pointed at a load balancer points at exactly one ACTIVE one (I1, I8: a load
    balancer deleted under a floating IP leaves it pointing at nothing); every load balancer is still there or
    was replaced by its one clone, which holds its floating IPs; no clone beside its source, no second clone;
    nothing unknown created, nothing temporary or pending left (I4).
    """
    owner = {port: lb_id for lb_id, lb in after["lbs"].items() for port in _ports(lb)}
    for fip in before["fips"].values():
        if fip["port_id"] is None:
            continue
        now = after["fips"].get(fip["id"])
        assert now is not None, f"I1: floating IP {fip['floating_ip_address']} disappeared"
        address = now["floating_ip_address"]
        assert now["port_id"] is not None, f"I1/I8: floating IP {address} points at nothing"
        lb_id = owner.get(now["port_id"])
        assert lb_id is not None, f"I1: floating IP {address} points at port {now['port_id']} of no load balancer"
        status = after["lbs"][lb_id]["provisioning_status"]
        assert status == "ACTIVE", f"I1: floating IP {address} points at {lb_id}, which is {status}"

    clones: dict[str, list[str]] = {}
    for lb_id, lb in after["lbs"].items():
        source = _source_of(lb)
        if lb_id in before["lbs"]:
            continue
        assert source is not None, f"I4: load balancer {lb_id} ({lb['name']}) appeared without a marker tag"
        clones.setdefault(source, []).append(lb_id)
    beside = clones_beside_sources(after)
    assert not beside, f"I4: clone(s) left beside their sources: {beside}"
    doubles = {s: c for s, c in clones.items() if len(c) > 1}
    assert not doubles, f"I4/I6: more than one clone of a source: {doubles}"

    for lb_id, lb in before["lbs"].items():
        successor = _successor(after, lb_id)
        assert successor is not None, f"load balancer {lb_id} ({lb['name']}) lost: neither it nor one clone is left"
        ports = _ports(after["lbs"][successor])
        for fip in before["fips"].values():
            if fip["port_id"] in _ports(lb):
                assert after["fips"][fip["id"]]["port_id"] in ports, (
                    f"I1: floating IP {fip['floating_ip_address']} of {lb_id} is not on {successor}, which stands "
                    "for it"
                )

    live_ports = set(owner)
    assert set(after["ports"]) == live_ports, f"I4: leaked ports {set(after['ports']) - live_ports}"
    temporary = [f["floating_ip_address"] for f in after["fips"].values() if MARKER_TEMP_FIP in f["tags"]]
    assert not temporary, f"I4: temporary floating IP(s) left: {temporary}"
    pending = {i: lb["provisioning_status"] for i, lb in after["lbs"].items() if lb["provisioning_status"] != "ACTIVE"}
    assert not pending, f"I4: load balancers not ACTIVE: {pending}"


def check_status(before: dict[str, Any], after: dict[str, Any], swaps: list[dict[str, Any]]) -> None:
    """The journal agrees with the cloud: every swap is terminal, and a swap is done exactly when the cloud
    shows it done (source retired and its clone present; for failover, every amphora on the newest image)."""
    newest = max((i for i in after["images"] if "amphora" in i["tags"]), key=lambda i: i["created_at"])["id"]
    for swap in swaps:
        source_id, state = swap["id"], swap["state"]
        assert state in ("done", "rolled_back", "failed", "skipped"), f"swap of {source_id} left {state}"
        if swap["strategy"] == "failover":
            upgraded = source_id in after["lbs"] and all(
                a["image_id"] == newest for a in after["lbs"][source_id]["amphorae"]
            )
            if state == "done":
                assert upgraded, f"status says {source_id} done, but its amphorae are not on the newest image"
            continue
        clones = [i for i, lb in after["lbs"].items() if _source_of(lb) == source_id]
        cloud_done = source_id not in after["lbs"] and len(clones) == 1
        assert (state == "done") == cloud_done, (
            f"status says {source_id} {state}, the cloud shows source "
            f"{'present' if source_id in after['lbs'] else 'gone'} and clone(s) {clones}"
        )
        if state == "done":
            assert swap["clone_id"] == clones[0], f"status names clone {swap['clone_id']}, the cloud has {clones}"
        else:
            assert not clones, f"swap of {source_id} ended {state} with clone(s) {clones} left"
    assert {s["id"] for s in swaps} <= set(before["lbs"]), "status names load balancers the cloud never had"
