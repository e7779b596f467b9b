"""client_addresses: which client-visible address each strategy keeps."""

from __future__ import annotations

import pytest

from lbswap.model import AdditionalVip, FloatingIP, LoadBalancer
from lbswap.planning.addresses import Address, changing, client_addresses

MAIN_FIP = FloatingIP("fip-1", "203.0.113.5", "port-vip", "10.0.0.10")


def lb(
    *additional: AdditionalVip, fips: tuple[FloatingIP, ...] = (MAIN_FIP,), vip: str | None = "10.0.0.10"
) -> LoadBalancer:
    return LoadBalancer(
        id="lb-1",
        name="web",
        vip_subnet_id="sub-v4",
        vip_address=vip,
        vip_port_id="port-vip",
        additional_vips=additional,
        floating_ips=fips,
    )


IPV6_ON_MAIN_PORT = AdditionalVip("sub-v6", "2001:db8::10", "port-vip")
IPV4_OWN_PORT = AdditionalVip("sub-b", "10.1.0.7", "port-b")


@pytest.mark.parametrize(
    ("strategy", "kept"),
    [
        ("fip-swap", [True, False]),  # the IPv4 floating IP does not keep the IPv6 address of the same port
        (None, [True, False]),  # no strategy: what a fip-swap would keep
        ("failover", [True, True]),  # the same load balancer
        ("recreate", [True, True]),  # every address is asked for again once the source released it
    ],
)
def test_dual_stack_per_strategy(strategy: str | None, kept: list[bool]) -> None:
    addresses = client_addresses(lb(IPV6_ON_MAIN_PORT), strategy)
    assert [(a.address, a.subnet_id, a.role) for a in addresses] == [
        ("10.0.0.10", "sub-v4", "vip"),
        ("2001:db8::10", "sub-v6", "additional"),
    ]
    assert [a.floating_ip for a in addresses] == ["203.0.113.5", None]
    assert [a.kept for a in addresses] == kept
    assert [a.address for a in changing(addresses)] == [
        a.address for a, k in zip(addresses, kept, strict=True) if not k
    ]


def test_no_floating_ip_keeps_nothing_on_a_fip_swap() -> None:
    addresses = client_addresses(lb(fips=()), "fip-swap")
    assert [(a.floating_ip, a.kept) for a in addresses] == [(None, False)]


def test_an_additional_vip_with_its_own_floating_ip_is_kept() -> None:
    own = FloatingIP("fip-2", "203.0.113.6", "port-b", "10.1.0.7")
    addresses = client_addresses(lb(IPV4_OWN_PORT, fips=(MAIN_FIP, own)), "fip-swap")
    assert [(a.address, a.floating_ip, a.kept) for a in addresses] == [
        ("10.0.0.10", "203.0.113.5", True),
        ("10.1.0.7", "203.0.113.6", True),
    ]


def test_a_floating_ip_on_its_own_port_without_a_fixed_address_is_matched_by_port() -> None:
    bare = FloatingIP("fip-2", "203.0.113.6", "port-b", None)
    addresses = client_addresses(lb(IPV4_OWN_PORT, fips=(MAIN_FIP, bare)), "fip-swap")
    assert [a.floating_ip for a in addresses] == ["203.0.113.5", "203.0.113.6"]


def test_a_floating_ip_for_another_fixed_address_does_not_count() -> None:
    other = FloatingIP("fip-9", "203.0.113.9", "port-vip", "10.0.0.99")
    addresses = client_addresses(lb(fips=(other,)), "fip-swap")
    assert [(a.floating_ip, a.kept) for a in addresses] == [(None, False)]


def test_a_main_vip_with_no_recorded_address_takes_the_floating_ip_on_its_port() -> None:
    addresses = client_addresses(lb(vip=None), "fip-swap")
    assert [(a.address, a.floating_ip, a.kept) for a in addresses] == [(None, "203.0.113.5", True)]
    assert addresses[0].describe() == "(unknown) on subnet sub-v4"


def test_a_bare_floating_ip_on_the_main_port_does_not_keep_an_ipv6_additional_vip() -> None:
    bare_main = FloatingIP("fip-1", "203.0.113.5", "port-vip", None)
    addresses = client_addresses(lb(AdditionalVip("sub-v6", "2001:db8::10"), fips=(bare_main,)), "fip-swap")
    assert [a.kept for a in addresses] == [True, False]


def test_to_json_has_the_documented_keys() -> None:
    address = Address("2001:db8::10", "sub-v6", None, False, "additional")
    assert address.to_json() == {"address": "2001:db8::10", "subnet_id": "sub-v6", "floating_ip": None, "kept": False}
    assert address.describe() == "2001:db8::10 on subnet sub-v6"
