"""The local backend's create-body validation and record allocation (pure: a state dict in, no system calls)."""

from __future__ import annotations

from typing import Any

import pytest

from lbswap.clouds.local import state as st
from lbswap.clouds.local.body import new_lb
from lbswap.clouds.local.cloud import ALGORITHMS, PROTOCOLS, _refresh
from lbswap.errors import CloudError, Conflict
from lbswap.lab.shapes import lb_body


def fresh() -> dict[str, Any]:
    state = st.empty_state("lbstest")
    st.publish(state, "amphora-old", ["amphora"], "v1")
    return state


def create(state: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return new_lb(state, body, "lbstest", PROTOCOLS, ALGORITHMS)


def test_a_single_record() -> None:
    state = fresh()
    lb = create(state, lb_body("web", "SINGLE", "HTTP", 80))
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert lb["vip_address"] == "10.0.2.10"
    assert state["ports"][lb["vip_port_id"]]["ip"] == lb["vip_address"]
    (amphora,) = lb["amphorae"]
    assert amphora["role"] == "STANDALONE" and amphora["ns"] == f"lbstest-a{amphora['index']}"
    assert amphora["image_id"] == state["images"][0]["id"]
    pool = lb["pools"][0]
    assert lb["listeners"][0]["default_pool_id"] == pool["id"]
    assert [m["address"] for m in pool["members"]] == ["10.0.1.10", "10.0.1.11"]
    assert state["amphora_log"][0]["image"] == "amphora-old"


def test_a_pair_gets_two_amphorae_and_its_own_vrrp_id() -> None:
    state = fresh()
    first = create(state, lb_body("a", "ACTIVE_STANDBY", "TCP", 5432))
    state["lbs"][first["id"]] = first
    second = create(state, lb_body("b", "ACTIVE_STANDBY", "HTTP", 80))
    assert [a["role"] for a in second["amphorae"]] == ["MASTER", "BACKUP"]
    assert first["vrid"] != second["vrid"]
    addresses = [a["address"] for lb in (first, second) for a in lb["amphorae"]]
    assert len(set(addresses)) == 4
    assert first["vip_address"] != second["vip_address"]


def test_the_newest_image_with_the_flavors_tag() -> None:
    state = fresh()
    newer = st.publish(state, "amphora-new", ["amphora"], "v2")
    assert create(state, lb_body("web", "SINGLE", "HTTP", 80))["amphorae"][0]["image_id"] == newer["id"]
    body = {**lb_body("c", "SINGLE", "HTTP", 80), "flavor_id": "flavor-canary"}
    with pytest.raises(CloudError, match="amphora-canary"):
        create(state, body)
    canary = st.publish(state, "canary-1", ["amphora-canary"], "v2")
    assert create(state, body)["amphorae"][0]["image_id"] == canary["id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vip_subnet_id": "other"}, "VIP subnet other not found"),
        ({"flavor_id": "nope"}, "flavor nope not found"),
        ({"provider": "ovn"}, "provider ovn not found"),
        ({"additional_vips": [{"subnet_id": "x"}]}, "additional VIPs"),
    ],
)
def test_refused_bodies(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CloudError, match=message) as info:
        create(fresh(), {**lb_body("web", "SINGLE", "HTTP", 80), **change})
    assert info.value.status_code == 400


def test_refused_graphs() -> None:
    body = lb_body("web", "SINGLE", "HTTP", 80)
    cases = [
        ({"pools": [body["pools"][0], body["pools"][0]]}, "defined twice"),
        ({"listeners": [{**body["listeners"][0], "protocol": "UDP"}]}, "listener protocol UDP"),
        ({"listeners": [{**body["listeners"][0], "default_pool": {"name": "missing"}}]}, "'missing' is referenced"),
        ({"listeners": [{**body["listeners"][0], "l7policies": [{"action": "REJECT"}]}]}, "L7 policies"),
        ({"pools": [{**body["pools"][0], "lb_algorithm": "SOURCE_IP_PORT"}]}, "SOURCE_IP_PORT"),
        ({"pools": [{**body["pools"][0], "tls_enabled": True}]}, "TLS"),
    ]
    for change, message in cases:
        with pytest.raises(CloudError, match=message):
            create(fresh(), {**body, **change})


def test_a_taken_vip_address_is_a_conflict() -> None:
    state = fresh()
    lb = create(state, lb_body("web", "SINGLE", "HTTP", 80))
    with pytest.raises(Conflict):
        create(state, {**lb_body("again", "SINGLE", "HTTP", 80), "vip_address": lb["vip_address"]})


def test_a_worker_that_never_started_leaves_error() -> None:
    state = fresh()
    lb = create(state, lb_body("web", "SINGLE", "HTTP", 80))
    state["lbs"][lb["id"]] = lb
    state["ops"]["op-1"] = {"kind": "create", "lb_id": lb["id"], "amphorae": [], "spawned": 0.0, "pid": None}
    lb["op"] = "op-1"
    assert _refresh(state)
    assert lb["provisioning_status"] == "ERROR" and "op" not in lb and state["ops"] == {}
    assert not _refresh(state)
