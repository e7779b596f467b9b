"""The readiness gate names what holds the flip back: the clone's status, an amphora, the operating status,
a member less healthy than on the source. Pure."""

from __future__ import annotations

import dataclasses

import pytest

from lbswap.model import Amphora, LoadBalancer, Member, Pool
from lbswap.workflow.tasks import not_ready


def _lb(lb_id: str, member_status: str = "ONLINE", **kw: object) -> LoadBalancer:
    pool = Pool(
        id=f"{lb_id}-p",
        name="web",
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        members=(Member(id=f"{lb_id}-m", address="10.0.0.5", protocol_port=80, operating_status=member_status),),
    )
    return LoadBalancer(id=lb_id, name="web", vip_subnet_id="s", pools=(pool,), **kw)  # type: ignore[arg-type]


SOURCE = _lb("src")


@pytest.mark.parametrize(
    ("clone", "held_by"),
    [
        (_lb("c"), ""),
        (_lb("c", provisioning_status="PENDING_UPDATE"), "the clone c is PENDING_UPDATE"),
        (
            _lb("c", amphorae=(Amphora("a1", "MASTER", "img", status="BOOTING"),)),
            "amphora a1 (MASTER) of the clone is BOOTING",
        ),
        (_lb("c", operating_status="DEGRADED"), "the clone is DEGRADED, the source ONLINE"),
        (_lb("c", member_status="OFFLINE"), "member 10.0.0.5:80 is OFFLINE on the clone, ONLINE on the source"),
        (_lb("c", member_status="NO_MONITOR"), "member 10.0.0.5:80 is NO_MONITOR on the clone, ONLINE on the source"),
    ],
)
def test_the_gate_names_what_holds_the_flip(clone: LoadBalancer, held_by: str) -> None:
    assert not_ready(SOURCE, clone) == held_by


def test_a_source_that_is_itself_unhealthy_does_not_hold_a_clone_as_healthy() -> None:
    source = dataclasses.replace(_lb("src", member_status="OFFLINE"), operating_status="DEGRADED")
    assert not_ready(source, _lb("c", member_status="OFFLINE", operating_status="DEGRADED")) == ""
