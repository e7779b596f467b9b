"""Check invariants I1-I7 on a fake cloud after a swap, from its final state and its audit of every call.

``before`` is the fake state (``FakeCloud.snapshot_state()``) taken before the campaign, ``after`` the state
after it ended; ``swap`` the swap's result JSON. Raises AssertionError naming the invariant.
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
