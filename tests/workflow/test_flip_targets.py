"""Where each floating IP goes at the flip: main VIP to main VIP, an additional VIP to the clone's additional
VIP on the same subnet, whether additional VIPs share the main VIP port (Octavia) or have ports of their own."""

from __future__ import annotations

import pytest

from lbswap.errors import SwapFailed
from lbswap.model import AdditionalVip, FloatingIP, LoadBalancer
from lbswap.workflow.tasks import flip_targets


def _lb(lb_id: str, vip: str, port: str, extras: tuple[AdditionalVip, ...], fips=()) -> LoadBalancer:
    return LoadBalancer(
        id=lb_id,
        name=lb_id,
        vip_subnet_id="sub-main",
        vip_address=vip,
        vip_port_id=port,
        additional_vips=extras,
        floating_ips=tuple(fips),
    )


def _fip(fip_id: str, port: str, fixed: str) -> FloatingIP:
    return FloatingIP(id=fip_id, floating_ip_address=f"203.0.113.{len(fip_id)}", port_id=port, fixed_ip_address=fixed)


def test_additional_vips_on_the_main_port_are_told_apart_by_address() -> None:
    source = _lb(
        "src",
        "10.0.0.5",
        "p-src",
        (AdditionalVip("sub-extra", "10.1.0.5"),),
        [_fip("main", "p-src", "10.0.0.5"), _fip("extra", "p-src", "10.1.0.5")],
    )
    clone = _lb("cln", "10.0.0.9", "p-cln", (AdditionalVip("sub-extra", "10.1.0.9"),))
    assert flip_targets(source, clone) == {"main": ("p-cln", "10.0.0.9"), "extra": ("p-cln", "10.1.0.9")}


def test_additional_vips_with_ports_of_their_own() -> None:
    source = _lb(
        "src",
        "10.0.0.5",
        "p-src",
        (AdditionalVip("sub-extra", "10.1.0.5", "p-src-x"),),
        [_fip("main", "p-src", "10.0.0.5"), _fip("extra", "p-src-x", "10.1.0.5")],
    )
    clone = _lb("cln", "10.0.0.9", "p-cln", (AdditionalVip("sub-extra", "10.1.0.9", "p-cln-x"),))
    assert flip_targets(source, clone) == {"main": ("p-cln", "10.0.0.9"), "extra": ("p-cln-x", "10.1.0.9")}


def test_a_clone_without_the_subnet_of_a_floating_ip_is_refused() -> None:
    extras = (AdditionalVip("sub-extra", "10.1.0.5"),)
    source = _lb("src", "10.0.0.5", "p-src", extras, [_fip("x", "p-src", "10.1.0.5")])
    clone = _lb("cln", "10.0.0.9", "p-cln", ())
    with pytest.raises(SwapFailed, match="no VIP on subnet sub-extra"):
        flip_targets(source, clone)
