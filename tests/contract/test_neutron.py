"""The Cloud protocol's Neutron side, on every backend: the floating IP compare-and-swap (412 on a stale
revision, nothing changed), floating IPs by port and tag, additional VIPs as extra fixed IPs of the main VIP
port (as Octavia puts them), and a subnet's free addresses."""

from __future__ import annotations

import ipaddress

import pytest

from lbswap.errors import NotFound, PreconditionFailed
from tests.contract.harness import Harness, unique

MISSING = "00000000-0000-0000-0000-00000000dead"


def test_move_floating_ip_is_a_compare_and_swap(contract_cloud: Harness) -> None:
    h = contract_cloud
    port_a, port_b = h.new_port(), h.new_port()
    (address_b,) = {ip for _subnet, ip in h.port_addresses(port_b) or set()}
    fip = h.cloud.get_floating_ip(h.add_fip(port_a))
    assert fip.port_id == port_a
    with pytest.raises(PreconditionFailed) as stale:
        h.cloud.move_floating_ip(fip.id, port_id=port_b, fixed_ip_address=None, if_revision=fip.revision_number - 1)
    assert stale.value.status_code == 412
    assert h.cloud.get_floating_ip(fip.id) == fip, "a refused compare-and-swap changed the floating IP"
    moved = h.cloud.move_floating_ip(fip.id, port_id=port_b, fixed_ip_address=None, if_revision=fip.revision_number)
    assert (moved.port_id, moved.fixed_ip_address) == (port_b, address_b)
    assert moved.revision_number == fip.revision_number + 1, "one PUT, one revision"
    assert moved.floating_ip_address == fip.floating_ip_address
    assert h.cloud.get_floating_ip(fip.id) == moved
    with pytest.raises(PreconditionFailed):  # the revision it was read at is stale now
        h.cloud.move_floating_ip(fip.id, port_id=port_a, fixed_ip_address=None, if_revision=fip.revision_number)
    assert h.cloud.get_floating_ip(fip.id).port_id == port_b
    with pytest.raises(NotFound):
        h.cloud.move_floating_ip(fip.id, port_id=MISSING, fixed_ip_address=None, if_revision=moved.revision_number)
    assert h.cloud.get_floating_ip(fip.id) == moved
    with pytest.raises(NotFound):
        h.cloud.get_floating_ip(MISSING)


def test_floating_ips_by_port_and_tag_and_idempotent_delete(contract_cloud: Harness) -> None:
    h = contract_cloud
    port, tag = h.new_port(), unique("lbswap:temp-fip")
    made = h.cloud.create_floating_ip(floating_network_id=h.external_network_id, port_id=port, tags=[tag])
    assert made.port_id == port and tag in made.tags
    assert made.floating_network_id == h.external_network_id
    assert [f.id for f in h.cloud.list_floating_ips(tag=tag)] == [made.id]
    assert [f.id for f in h.cloud.list_floating_ips(port_id=port)] == [made.id]
    assert h.cloud.list_floating_ips(tag=unique("no-such-tag")) == []
    h.cloud.delete_floating_ip(made.id)
    h.cloud.delete_floating_ip(made.id)  # a missing one is not an error
    assert h.cloud.list_floating_ips(tag=tag) == []
    with pytest.raises(NotFound):
        h.cloud.get_floating_ip(made.id)


def test_a_floating_ip_whose_port_went_reads_back_unassociated(contract_cloud: Harness) -> None:
    """Neutron keeps a floating IP whose port is deleted (a cascade delete takes the VIP port), with port_id
    and fixed_ip_address null: the sweep for temporary floating IPs must still read it."""
    h = contract_cloud
    port, tag = h.new_port(), unique("lbswap:temp-fip")
    made = h.cloud.create_floating_ip(floating_network_id=h.external_network_id, port_id=port, tags=[tag])
    try:
        h.delete_port(port)
        fip = h.cloud.get_floating_ip(made.id)
        assert (fip.id, fip.port_id, fip.fixed_ip_address) == (made.id, None, None)
        assert fip.revision_number > made.revision_number
        assert h.cloud.list_floating_ips(tag=tag) == [fip]
    finally:
        h.cloud.delete_floating_ip(made.id)


def test_additional_vips_are_fixed_ips_of_the_main_vip_port(contract_cloud: Harness) -> None:
    """Octavia puts an additional VIP on the main VIP port, with its own subnet and address: a floating IP
    (IPv4 only) on the VIP port is in front of the IPv4 VIP, never of the IPv6 one."""
    h = contract_cloud
    v4, v6 = h.dual_stack()
    lb_id = h.create_active(h.small_body(unique("dual"), vip_subnet_id=v4, additional_vips=[{"subnet_id": v6}]))
    graph = h.cloud.read_graph(lb_id)
    (extra,) = graph.additional_vips
    assert extra.subnet_id == v6 and extra.ip_address
    assert ipaddress.ip_address(extra.ip_address).version == 6
    assert extra.port_id in (None, graph.vip_port_id), "an additional VIP on a port of its own"
    assert graph.vip_port_id and graph.vip_address
    assert h.port_addresses(graph.vip_port_id) == {(v4, graph.vip_address), (v6, extra.ip_address)}
    fip_id = h.add_fip(graph.vip_port_id)
    (fip,) = h.cloud.read_graph(lb_id).floating_ips
    assert (fip.id, fip.fixed_ip_address) == (fip_id, graph.vip_address)


def test_subnet_free_addresses_drop_by_one_per_port(contract_cloud: Harness) -> None:
    h = contract_cloud
    free = h.cloud.subnet_free_addresses(h.subnet_id)
    assert isinstance(free, int) and free > 0
    h.new_port()
    assert h.cloud.subnet_free_addresses(h.subnet_id) == free - 1
    with pytest.raises(NotFound):
        h.cloud.subnet_free_addresses(MISSING)
