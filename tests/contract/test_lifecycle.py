"""The Cloud protocol's load balancer lifecycle, on every backend: a fully-populated create reads back as asked,
changes go through PENDING_* to ACTIVE, a change while PENDING is refused with 409, a cascade delete removes
the load balancer and its VIP port, a failover rebuilds the amphorae, and Octavia's validation refuses what
it refuses with 400."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from lbswap.errors import CloudError, Conflict, NotFound
from lbswap.model import LoadBalancer
from tests.clouds import openstack_stack as stack
from tests.contract.harness import Harness, unique

#: body keys that name something created with the load balancer (compared by name, or recursively)
CHILDREN = ("listeners", "pools", "members", "healthmonitor", "l7policies", "rules")
REFERENCES = {"default_pool": "default_pool_id", "redirect_pool": "redirect_pool_id"}


def _same(asked: Any, got: Any) -> bool:
    """Equal as Octavia means it: lists of strings in any order, a dict answered with at least the asked keys
    (Octavia adds the ones it defaults, as ``session_persistence.cookie_name``)."""
    if isinstance(asked, dict):
        return isinstance(got, dict) and all(_same(v, got.get(k)) for k, v in asked.items())
    if isinstance(asked, list | tuple):
        if not isinstance(got, list | tuple) or len(asked) != len(got):
            return False
        if all(isinstance(v, str) for v in asked):
            return sorted(asked) == sorted(got)
        return list(asked) == list(got)
    return bool(asked == got)


def _check(asked: Mapping[str, Any], got: object, where: str, graph: LoadBalancer) -> None:
    for key, want in asked.items():
        if key in CHILDREN:
            continue
        if key in REFERENCES:
            pool_id = getattr(got, REFERENCES[key])
            assert pool_id and graph.pool_by_id(pool_id).name == want["name"], f"{where}.{key}"
            continue
        assert _same(want, getattr(got, key)), f"{where}.{key}: asked {want!r}, read {getattr(got, key)!r}"


def assert_reads_back(body: Mapping[str, Any], graph: LoadBalancer) -> None:
    """Every field the create body asked for is what read_graph returns (ids and statuses aside)."""
    _check(body, graph, "load balancer", graph)
    assert sorted(p.name for p in graph.pools) == sorted(p["name"] for p in body.get("pools", []))
    for asked in body.get("pools", []):
        pool = next(p for p in graph.pools if p.name == asked["name"])
        _check(asked, pool, f"pool {pool.name}", graph)
        members = {(m.address, m.protocol_port): m for m in pool.members}
        assert sorted(members) == sorted((m["address"], m["protocol_port"]) for m in asked.get("members", []))
        for member in asked.get("members", []):
            _check(member, members[member["address"], member["protocol_port"]], f"member {member}", graph)
        assert (pool.healthmonitor is None) == ("healthmonitor" not in asked)
        if pool.healthmonitor:
            _check(asked["healthmonitor"], pool.healthmonitor, f"monitor of {pool.name}", graph)
    assert sorted(li.name for li in graph.listeners) == sorted(li["name"] for li in body.get("listeners", []))
    for asked in body.get("listeners", []):
        listener = next(li for li in graph.listeners if li.name == asked["name"])
        _check(asked, listener, f"listener {listener.name}", graph)
        policies = {p.name: p for p in listener.l7policies}
        assert sorted(policies) == sorted(p["name"] for p in asked.get("l7policies", []))
        for policy in asked.get("l7policies", []):
            _check(policy, policies[policy["name"]], f"L7 policy {policy['name']}", graph)
            rules = policies[policy["name"]].rules
            assert len(rules) == len(policy.get("rules", []))
            for rule in policy.get("rules", []):
                assert any(_same_fields(rule, r) for r in rules), f"rule {rule} not in {rules}"


def _same_fields(asked: Mapping[str, Any], got: object) -> bool:
    return all(_same(v, getattr(got, k)) for k, v in asked.items())


def test_a_fully_populated_create_reads_back_as_asked(contract_cloud: Harness) -> None:
    h = contract_cloud
    net = stack.Net(h.external_network_id, h.subnet_id, h.network_id, h.flavor_ha)
    body = stack.full_body(net, unique("graph"), flavor_id=h.flavor_ha)
    body["project_id"] = h.project_id
    lb = h.cloud.create_load_balancer(body)
    assert lb.provisioning_status == "PENDING_CREATE"
    assert (lb.name, lb.project_id, lb.flavor_id, lb.provider) == (body["name"], h.project_id, h.flavor_ha, "amphora")
    h.wait_status(lb.id)
    graph = h.cloud.read_graph(lb.id)
    assert_reads_back(body, graph)
    assert graph.topology == "ACTIVE_STANDBY"
    assert sorted(a.role for a in graph.amphorae) == ["BACKUP", "MASTER"]
    assert graph.vip_network_id == h.network_id
    assert graph.vip_port_id and graph.vip_address
    assert h.port_addresses(graph.vip_port_id) == {(h.subnet_id, graph.vip_address)}
    assert graph.floating_ips == ()
    assert [s.id for s in h.cloud.list_load_balancers(project_id=h.project_id)] == [lb.id]
    assert h.cloud.list_amphorae(lb.id) == list(graph.amphorae)


def test_create_is_pending_then_active_and_a_change_while_pending_is_refused(contract_cloud: Harness) -> None:
    h = contract_cloud
    lb = h.cloud.create_load_balancer(h.small_body(unique("pending")))
    assert lb.provisioning_status == "PENDING_CREATE"
    with pytest.raises(Conflict) as refused:  # Octavia answers at once; its worker takes about a second
        h.cloud.rename_load_balancer(lb.id, "renamed")
    assert refused.value.status_code == 409
    with pytest.raises(Conflict):
        h.cloud.failover_load_balancer(lb.id)
    with pytest.raises(Conflict):
        h.cloud.delete_load_balancer(lb.id)
    seen = h.wait_status(lb.id)
    assert seen[0] in ("PENDING_CREATE", "ACTIVE") and seen[-1] == "ACTIVE", seen
    assert set(seen) <= {"PENDING_CREATE", "ACTIVE"}, seen
    assert h.cloud.get_load_balancer(lb.id).name == lb.name, "a refused change changed something"
    h.cloud.rename_load_balancer(lb.id, "renamed")
    seen = h.wait_status(lb.id)
    assert set(seen) <= {"PENDING_UPDATE", "ACTIVE"}, seen
    assert h.cloud.get_load_balancer(lb.id).name == "renamed"


def test_unknown_load_balancers_are_not_found(contract_cloud: Harness) -> None:
    cloud, missing = contract_cloud.cloud, "00000000-0000-0000-0000-000000000000"
    for call in (cloud.get_load_balancer, cloud.read_graph, cloud.get_stats):
        with pytest.raises(NotFound):
            call(missing)
    with pytest.raises(NotFound):
        cloud.rename_load_balancer(missing, "x")
    with pytest.raises(NotFound):
        cloud.failover_amphora(missing)
    cloud.delete_load_balancer(missing)  # deletes are idempotent


def test_cascade_delete_removes_the_load_balancer_and_its_vip_port(contract_cloud: Harness) -> None:
    h = contract_cloud
    lb_id = h.create_active(h.small_body(unique("delete")))
    keep_id = h.create_active(h.small_body(unique("keep")))
    graph, keep = h.cloud.read_graph(lb_id), h.cloud.read_graph(keep_id)
    assert graph.vip_port_id and keep.vip_port_id
    fip_id = h.add_fip(graph.vip_port_id)
    assert [f.id for f in h.cloud.read_graph(lb_id).floating_ips] == [fip_id]
    h.cloud.delete_load_balancer(lb_id, cascade=True)
    h.cloud.delete_load_balancer(lb_id, cascade=True)  # already PENDING_DELETE: quietly done
    assert set(h.wait_gone(lb_id)) <= {"PENDING_DELETE"}
    assert h.port_addresses(graph.vip_port_id) is None, "the VIP port outlived its load balancer"
    assert h.cloud.list_floating_ips(port_id=graph.vip_port_id) == []  # the floating IP stays, unassociated
    assert h.port_addresses(keep.vip_port_id) is not None, "another load balancer's VIP port was touched"
    assert h.cloud.get_load_balancer(keep_id).provisioning_status == "ACTIVE"
    h.cloud.delete_load_balancer(lb_id, cascade=True)  # gone: not an error


def test_a_delete_without_cascade_of_a_load_balancer_with_children_is_refused(contract_cloud: Harness) -> None:
    """Octavia: 400 "Cannot delete Load Balancer ... - it has children"; nothing changes."""
    h = contract_cloud
    lb_id = h.create_active(h.small_body(unique("children")))
    with pytest.raises(CloudError) as refused:
        h.cloud.delete_load_balancer(lb_id, cascade=False)
    assert refused.value.status_code == 400, refused.value
    assert h.cloud.get_load_balancer(lb_id).provisioning_status == "ACTIVE"
    empty = h.create_active({"name": unique("empty"), "project_id": h.project_id, "vip_subnet_id": h.subnet_id})
    h.cloud.delete_load_balancer(empty, cascade=False)
    h.wait_gone(empty)


@pytest.mark.parametrize("topology", ["SINGLE", "ACTIVE_STANDBY"])
def test_failover_rebuilds_every_amphora_and_returns_to_active(contract_cloud: Harness, topology: str) -> None:
    h = contract_cloud
    flavor = {"flavor_id": h.flavor_ha} if topology == "ACTIVE_STANDBY" else {}
    lb_id = h.create_active(h.small_body(unique("failover"), **flavor))
    before = h.cloud.read_graph(lb_id)
    assert len(before.amphorae) == (2 if flavor else 1)
    h.cloud.failover_load_balancer(lb_id)
    seen = h.wait_status(lb_id)
    assert set(seen) <= {"PENDING_UPDATE", "ACTIVE"}, seen
    after = h.cloud.read_graph(lb_id)
    assert sorted(a.role for a in after.amphorae) == sorted(a.role for a in before.amphorae)
    assert not {a.id for a in before.amphorae} & {a.id for a in after.amphorae}, "an amphora was not rebuilt"
    assert (after.vip_address, after.vip_port_id) == (before.vip_address, before.vip_port_id)
    one = after.amphorae[0]
    h.cloud.failover_amphora(one.id)
    seen = h.wait_status(lb_id)
    assert set(seen) <= {"PENDING_UPDATE", "ACTIVE"}, seen
    again = {a.id for a in h.cloud.list_amphorae(lb_id)}
    assert one.id not in again and {a.id for a in after.amphorae} - {one.id} <= again


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda h, body: body.update(vip_subnet_id="00000000-0000-0000-0000-00000000beef"), id="subnet"),
        pytest.param(lambda h, body: body["listeners"][0].update(default_pool={"name": "nope"}), id="pool-reference"),
        pytest.param(lambda h, body: body["pools"][0].update(lb_algorithm="NOPE"), id="algorithm"),
        pytest.param(lambda h, body: body.update(flavor_id="00000000-0000-0000-0000-00000000f1a0"), id="flavor"),
        pytest.param(
            lambda h, body: body.update(additional_vips=[{"subnet_id": h.other_subnet_id}]), id="vip-other-network"
        ),
        pytest.param(lambda h, body: body.update(additional_vips=[{"subnet_id": h.subnet_id}]), id="vip-same-subnet"),
    ],
)
def test_a_create_octavia_refuses_is_a_400_and_creates_nothing(contract_cloud: Harness, change: Any) -> None:
    h = contract_cloud
    body = h.small_body(unique("refused"), project_id=h.fresh_project())
    change(h, body)
    with pytest.raises(CloudError) as refused:
        h.cloud.create_load_balancer(body)
    assert refused.value.status_code == 400, refused.value
    assert h.cloud.list_load_balancers(project_id=body["project_id"]) == []
