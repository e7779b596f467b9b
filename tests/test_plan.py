"""Unit tests of the plan's rules: ``evaluate`` and ``fleet_findings`` are pure, so every finding code is
tested here on load balancers built by hand, with no cloud."""

from __future__ import annotations

import dataclasses

import pytest

from lbswap import plan as plan_mod
from lbswap.clone import TargetChanges
from lbswap.model import (
    MARKER_CAMPAIGN,
    MARKER_CLONE_OF,
    AdditionalVip,
    Amphora,
    Flavor,
    FloatingIP,
    LBSummary,
    Listener,
    LoadBalancer,
    Pool,
    Provider,
    QuotaUsage,
    StackResource,
)
from lbswap.plan import Facts, Finding, LBPlan, PlanOptions, evaluate, fleet_findings

V4 = "sub-v4"
V6 = "sub-v6"
VIP = "10.0.0.10"
VIP6 = "2001:db8::10"
PORT = "port-vip"
FIP = FloatingIP("fip-1", "203.0.113.5", PORT, VIP)


def make_lb(**changes: object) -> LoadBalancer:
    lb = LoadBalancer(
        id="lb-1",
        name="web",
        vip_subnet_id=V4,
        vip_address=VIP,
        vip_port_id=PORT,
        listeners=(Listener(protocol="HTTP", protocol_port=80, name="http"),),
        pools=(Pool(name="p", protocol="HTTP", lb_algorithm="ROUND_ROBIN", id="pool-1"),),
        amphorae=(Amphora("amp-1", "STANDALONE", "img-old"),),
    )
    return dataclasses.replace(lb, **changes)  # type: ignore[arg-type]


def with_fip(**changes: object) -> LoadBalancer:
    return make_lb(floating_ips=(FIP,), **changes)


def dual_stack(topology: str = "SINGLE") -> LoadBalancer:
    """As real Octavia has it: the IPv6 additional VIP is a second fixed IP of the main VIP port."""
    return with_fip(topology=topology, additional_vips=(AdditionalVip(subnet_id=V6, ip_address=VIP6, port_id=PORT),))


def make_facts(lb: LoadBalancer, **changes: object) -> Facts:
    facts = Facts(
        lb=lb,
        quota=QuotaUsage(),
        subnet_free={lb.vip_subnet_id: 100, **{v.subnet_id: 100 for v in lb.additional_vips}},
        unreadable_refs=(),
        provider=Provider("amphora"),
        extra={"provider_name": lb.provider},
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def plan_of(lb: LoadBalancer, options: PlanOptions | None = None, **facts: object) -> LBPlan:
    return evaluate(make_facts(lb, **facts), options or PlanOptions())


def found(plan: LBPlan, code: str) -> list[Finding]:
    return [f for f in plan.findings if f.code == code]


def only(plan: LBPlan, code: str) -> Finding:
    matches = found(plan, code)
    assert len(matches) == 1, plan.findings
    return matches[0]


# --- the baseline: a load balancer with a floating IP on its VIP plans a clean fip-swap ---------------------


def test_a_vip_behind_a_floating_ip_plans_a_fip_swap_without_findings() -> None:
    plan = plan_of(with_fip())
    assert plan.strategy == "fip-swap"
    assert plan.findings == ()
    assert not plan.blocking
    assert plan.downtime.startswith("none")
    assert [(a.address, a.floating_ip, a.kept) for a in plan.addresses] == [(VIP, "203.0.113.5", True)]


# --- state of the load balancer ------------------------------------------------------------------------------


def test_flavor_missing_blocks() -> None:
    plan = plan_of(with_fip(), PlanOptions(target_flavor="gold"), target_flavor_missing="gold")
    finding = only(plan, "flavor-missing")
    assert finding.blocking and "gold" in finding.message


def test_a_target_flavor_found_becomes_the_target() -> None:
    plan = plan_of(with_fip(), PlanOptions(target_flavor="gold"), target_flavor=Flavor("flv-gold", "gold"))
    assert plan.target.flavor_id == "flv-gold"
    assert found(plan, "flavor-missing") == []


@pytest.mark.parametrize(("status", "advice"), [("ERROR", "--repair"), ("PENDING_UPDATE", "wait until")])
def test_not_active_blocks_with_advice_per_status(status: str, advice: str) -> None:
    finding = only(plan_of(with_fip(provisioning_status=status)), "not-active")
    assert finding.blocking
    assert status in finding.message and advice in finding.message


def test_clone_exists_blocks_naming_the_campaign() -> None:
    clone = LBSummary("clone-1", "web", "ACTIVE", "ONLINE", tags=(MARKER_CLONE_OF + "lb-1", MARKER_CAMPAIGN + "camp-7"))
    finding = only(plan_of(with_fip(), existing_clones=(clone,)), "clone-exists")
    assert finding.blocking
    assert "clone-1" in finding.message and "lbswap resume camp-7" in finding.message


def test_is_clone_blocks_while_its_source_exists() -> None:
    lb = with_fip(tags=(MARKER_CLONE_OF + "lb-0", MARKER_CAMPAIGN + "camp-7"))
    finding = only(plan_of(lb, clone_source_exists=True), "is-clone")
    assert finding.blocking and "camp-7" in finding.message


def test_a_clone_whose_source_is_retired_is_an_ordinary_load_balancer() -> None:
    lb = with_fip(tags=(MARKER_CLONE_OF + "lb-0", MARKER_CAMPAIGN + "camp-7"))
    plan = plan_of(lb, clone_source_exists=False)
    assert found(plan, "is-clone") == []
    assert not plan.blocking


# --- strategy ------------------------------------------------------------------------------------------------


def test_auto_without_floating_ip_on_single_is_blocked_downtime_not_allowed() -> None:
    plan = plan_of(make_lb())
    assert plan.strategy is None
    assert plan.downtime == "-"
    finding = only(plan, "downtime-not-allowed")
    assert finding.blocking and "--allow-downtime" in finding.message


def test_auto_without_floating_ip_with_allow_downtime_fails_over_with_an_outage() -> None:
    plan = plan_of(make_lb(), PlanOptions(allow_downtime=True))
    assert plan.strategy == "failover"
    assert plan.downtime.startswith("outage")
    assert not plan.blocking


def test_auto_without_floating_ip_on_active_standby_fails_over_without_findings() -> None:
    plan = plan_of(make_lb(topology="ACTIVE_STANDBY"))
    assert plan.strategy == "failover"
    assert plan.downtime.startswith("no outage")
    assert plan.findings == ()


def test_auto_without_floating_ip_with_a_target_recreates_and_needs_downtime() -> None:
    plan = plan_of(make_lb(), PlanOptions(target=TargetChanges(availability_zone="az2")))
    assert plan.strategy == "recreate"
    assert only(plan, "downtime-not-allowed").blocking
    plan = plan_of(make_lb(), PlanOptions(target=TargetChanges(availability_zone="az2"), allow_downtime=True))
    assert plan.strategy == "recreate"
    assert not plan.blocking


@pytest.mark.parametrize(
    ("strategy", "topology", "allow_downtime", "blocked"),
    [
        ("failover", "SINGLE", False, True),
        ("failover", "SINGLE", True, False),
        ("failover", "ACTIVE_STANDBY", False, False),
        ("recreate", "SINGLE", False, True),
        ("recreate", "ACTIVE_STANDBY", False, True),  # recreate always deletes first
        ("recreate", "SINGLE", True, False),
    ],
)
def test_downtime_not_allowed_per_strategy(strategy: str, topology: str, allow_downtime: bool, blocked: bool) -> None:
    plan = plan_of(make_lb(topology=topology), PlanOptions(strategy=strategy, allow_downtime=allow_downtime))
    assert plan.strategy == strategy
    matches = found(plan, "downtime-not-allowed")
    assert [f.blocking for f in matches] == ([True] if blocked else [])


def test_no_fip_blocks_a_fip_swap() -> None:
    plan = plan_of(make_lb(), PlanOptions(strategy="fip-swap"))
    assert plan.strategy == "fip-swap"
    assert only(plan, "no-fip").blocking


def test_failover_cannot_change_the_target() -> None:
    options = PlanOptions(strategy="failover", target=TargetChanges(provider="ovn"))
    assert only(plan_of(make_lb(topology="ACTIVE_STANDBY"), options), "failover-cannot-change").blocking
    assert (
        found(plan_of(make_lb(topology="ACTIVE_STANDBY"), PlanOptions(strategy="failover")), "failover-cannot-change")
        == []
    )


def test_failover_needs_amphorae() -> None:
    plan = plan_of(make_lb(topology="ACTIVE_STANDBY", provider="ovn"), PlanOptions(strategy="failover"))
    finding = only(plan, "failover-provider")
    assert finding.blocking and "ovn" in finding.message


def test_recreate_with_a_floating_ip_blocks() -> None:
    plan = plan_of(with_fip(), PlanOptions(strategy="recreate", allow_downtime=True))
    assert only(plan, "recreate-with-fip").blocking
    assert found(plan_of(make_lb(), PlanOptions(strategy="recreate", allow_downtime=True)), "recreate-with-fip") == []


# --- what a clone needs --------------------------------------------------------------------------------------


def test_quota_blocks_when_the_project_cannot_hold_the_clone() -> None:
    quota = QuotaUsage(limits={"listener": 3, "port": 10}, in_use={"listener": 3, "port": 2})
    finding = only(plan_of(with_fip(), quota=quota), "quota")
    assert finding.blocking and "listener" in finding.message and "leaves 0" in finding.message


def test_quota_with_room_or_unlimited_is_silent() -> None:
    quota = QuotaUsage(limits={"listener": 3, "port": -1}, in_use={"listener": 2, "port": 500})
    assert found(plan_of(with_fip(), quota=quota), "quota") == []


def test_quota_counts_a_port_per_vip() -> None:
    lb = dual_stack()
    quota = QuotaUsage(limits={"port": 1}, in_use={"port": 0})
    finding = only(plan_of(lb, PlanOptions(accept_address_change=True), quota=quota), "quota")
    assert "2 port(s)" in finding.message


@pytest.mark.parametrize(("free", "blocked"), [(2, True), (3, False)])
def test_active_standby_fip_swap_needs_three_addresses_on_its_vip_subnet(free: int, blocked: bool) -> None:
    plan = plan_of(with_fip(topology="ACTIVE_STANDBY"), subnet_free={V4: free})
    assert plan.strategy == "fip-swap"
    matches = found(plan, "subnet-full")
    assert [f.blocking for f in matches] == ([True] if blocked else [])
    if blocked:
        assert "needs 3" in matches[0].message and V4 in matches[0].message


@pytest.mark.parametrize(("free", "blocked"), [(1, True), (2, False)])
def test_single_fip_swap_needs_two_addresses(free: int, blocked: bool) -> None:
    plan = plan_of(with_fip(), subnet_free={V4: free})
    assert bool(found(plan, "subnet-full")) == blocked


def test_a_target_flavor_topology_sizes_the_clone() -> None:
    flavor = Flavor("flv-ha", "ha", topology="ACTIVE_STANDBY")
    plan = plan_of(with_fip(), target_flavor=flavor, subnet_free={V4: 2})
    assert only(plan, "subnet-full").blocking


def test_an_unknown_free_address_count_is_not_a_finding() -> None:
    assert found(plan_of(with_fip(), subnet_free={V4: None}), "subnet-full") == []


def test_tls_unreadable_blocks_a_clone_but_not_a_failover() -> None:
    listener = Listener(protocol="TERMINATED_HTTPS", protocol_port=443, default_tls_container_ref="ref-1")
    lb = with_fip(listeners=(listener,))
    finding = only(plan_of(lb, unreadable_refs=("ref-1",)), "tls-unreadable")
    assert finding.blocking and "ref-1" in finding.message
    failover = plan_of(lb, PlanOptions(strategy="failover", allow_downtime=True), unreadable_refs=("ref-1",))
    assert found(failover, "tls-unreadable") == []


def test_provider_missing_blocks() -> None:
    plan = plan_of(
        with_fip(), PlanOptions(target=TargetChanges(provider="ovn")), provider=None, extra={"provider_name": "ovn"}
    )
    finding = only(plan, "provider-missing")
    assert finding.blocking and "ovn" in finding.message


def test_provider_protocol_blocks() -> None:
    plan = plan_of(with_fip(), provider=Provider("ovn", listener_protocols=("TCP", "UDP")))
    finding = only(plan, "provider-protocol")
    assert finding.blocking and "HTTP" in finding.message


def test_provider_algorithm_blocks() -> None:
    plan = plan_of(with_fip(), provider=Provider("ovn", lb_algorithms=("SOURCE_IP_PORT",)))
    finding = only(plan, "provider-algorithm")
    assert finding.blocking and "ROUND_ROBIN" in finding.message


def test_provider_rules_do_not_apply_to_a_failover() -> None:
    plan = plan_of(make_lb(topology="ACTIVE_STANDBY"), provider=None)
    assert plan.strategy == "failover"
    assert found(plan, "provider-missing") == []


# --- informational findings ----------------------------------------------------------------------------------


def test_kubernetes_fip_swap_names_the_temporary_clone_name() -> None:
    plan = plan_of(with_fip(name="kube_service_c1_ns_svc"), PlanOptions(allow_owned=("kubernetes",)))
    finding = only(plan, "kubernetes")
    assert not finding.blocking and "kube_service_c1_ns_svc-lbswap" in finding.message
    assert plan.kubernetes
    assert not plan.blocking


def test_up_to_date_is_informational_and_absent_with_a_target() -> None:
    lb = with_fip(amphorae=(Amphora("amp-1", "STANDALONE", "img-new"),))
    finding = only(plan_of(lb, newest_image="img-new"), "up-to-date")
    assert not finding.blocking and "img-new" in finding.message
    assert (
        found(
            plan_of(lb, PlanOptions(target=TargetChanges(availability_zone="az2")), newest_image="img-new"),
            "up-to-date",
        )
        == []
    )
    assert found(plan_of(with_fip(), newest_image="img-new"), "up-to-date") == []  # runs img-old


# --- addresses: the dual-stack load balancer -----------------------------------------------------------------


def test_dual_stack_single_auto_picks_fip_swap_blocked_by_the_ipv6_address_change() -> None:
    plan = plan_of(dual_stack())
    assert plan.strategy == "fip-swap"
    kept = {a.address: (a.floating_ip, a.kept) for a in plan.addresses}
    assert kept == {VIP: ("203.0.113.5", True), VIP6: (None, False)}
    finding = only(plan, "address-change")
    assert finding.blocking
    assert VIP6 in finding.message and VIP not in finding.message.replace(VIP6, "")
    assert "--accept-address-change" in finding.message
    assert plan.blocking


def test_dual_stack_single_with_accept_address_change_is_allowed() -> None:
    plan = plan_of(dual_stack(), PlanOptions(accept_address_change=True))
    assert plan.strategy == "fip-swap"
    finding = only(plan, "address-change")
    assert not finding.blocking and VIP6 in finding.message
    assert not plan.blocking


def test_dual_stack_active_standby_auto_fails_over_keeping_every_address() -> None:
    plan = plan_of(dual_stack("ACTIVE_STANDBY"))
    assert plan.strategy == "failover"
    assert [(a.address, a.kept) for a in plan.addresses] == [(VIP, True), (VIP6, True)]
    assert found(plan, "address-change") == []
    assert not plan.blocking


def test_dual_stack_explicit_fip_swap_on_active_standby_names_failover_as_the_alternative() -> None:
    finding = only(plan_of(dual_stack("ACTIVE_STANDBY"), PlanOptions(strategy="fip-swap")), "address-change")
    assert finding.blocking and "--strategy failover (keeps every address" in finding.message


def test_dual_stack_single_with_allow_downtime_fails_over() -> None:
    plan = plan_of(dual_stack(), PlanOptions(allow_downtime=True))
    assert plan.strategy == "failover"
    assert found(plan, "address-change") == []


def test_dual_stack_fip_swap_needs_addresses_on_both_subnets() -> None:
    plan = plan_of(dual_stack(), PlanOptions(accept_address_change=True), subnet_free={V4: 2, V6: 0})
    finding = only(plan, "subnet-full")
    assert V6 in finding.message and "needs 1" in finding.message


# --- owners --------------------------------------------------------------------------------------------------

CAPI = "k8s-clusterapi-cluster-default-mycluster-kubeapi"
HEAT = StackResource("stack-1", "webstack", "lb", "lb-1")


def test_a_cluster_api_load_balancer_is_blocked_as_owned() -> None:
    plan = plan_of(with_fip(name=CAPI))
    finding = only(plan, "owned")
    assert finding.blocking
    assert "Cluster API" in finding.message and "--allow-owned cluster-api" in finding.message
    assert [o.kind for o in plan.owners] == ["cluster-api"]


def test_a_heat_owned_load_balancer_is_blocked_as_owned() -> None:
    other = StackResource("stack-2", "other", "lb", "lb-2")
    plan = plan_of(with_fip(), stacks=(other, HEAT))
    finding = only(plan, "owned")
    assert finding.blocking and "webstack" in finding.message and "--allow-owned heat" in finding.message
    assert [o.kind for o in plan.owners] == ["heat"]


def test_a_magnum_owned_load_balancer_is_blocked_as_owned() -> None:
    plan = plan_of(with_fip(), stacks=(dataclasses.replace(HEAT, owner="magnum"),))
    assert "Magnum cluster webstack" in only(plan, "owned").message


def test_a_declared_owner_tag_blocks() -> None:
    plan = plan_of(with_fip(tags=("managed-by-tf",)), PlanOptions(owned_tags=("managed-by-tf",)))
    assert only(plan, "owned").blocking
    assert found(plan_of(with_fip(tags=("managed-by-tf",))), "owned") == []


def test_a_kubernetes_load_balancer_is_owned() -> None:
    plan = plan_of(with_fip(name="kube_service_c1_ns_svc"))
    assert only(plan, "owned").blocking


@pytest.mark.parametrize(
    ("lb", "stacks", "kind"), [(with_fip(name=CAPI), (), "cluster-api"), (with_fip(), (HEAT,), "heat")]
)
def test_allow_owned_lets_an_owned_load_balancer_proceed(
    lb: LoadBalancer, stacks: tuple[StackResource, ...], kind: str
) -> None:
    plan = plan_of(lb, PlanOptions(allow_owned=(kind,)), stacks=stacks)
    finding = only(plan, "owned")
    assert not finding.blocking and "--allow-owned" not in finding.message
    assert not plan.blocking
    other = plan_of(lb, PlanOptions(allow_owned=("tagged",)), stacks=stacks)
    assert only(other, "owned").blocking


def test_owners_do_not_block_a_failover_which_keeps_the_ids() -> None:
    plan = plan_of(make_lb(name=CAPI, topology="ACTIVE_STANDBY"), stacks=(HEAT,))
    assert plan.strategy == "failover"
    assert found(plan, "owned") == []
    assert [o.kind for o in plan.owners] == ["cluster-api", "heat"]


# --- the fleet: what the swaps in flight at once need --------------------------------------------------------


def fleet(
    count: int, options: PlanOptions, free: int | None, topology: str = "SINGLE"
) -> tuple[list[LBPlan], list[Facts]]:
    facts = [make_facts(with_fip(id=f"lb-{i}", topology=topology), subnet_free={V4: free}) for i in range(count)]
    return [evaluate(f, options) for f in facts], facts


def test_ten_swaps_at_parallel_five_on_a_subnet_with_room_for_three_clones_are_blocked() -> None:
    options = PlanOptions(parallel=5)
    plans, facts = fleet(10, options, free=6)  # SINGLE: 2 addresses per clone, so room for 3
    assert not any(p.blocking for p in plans)  # each alone fits
    result = fleet_findings(plans, facts, options, QuotaUsage())
    assert len(result) == 10
    for plan in result:
        finding = only(plan, "subnet-capacity")
        assert finding.blocking
        assert "lower --parallel (or --max-creating) to 3" in finding.message
        assert "need 10 addresses" in finding.message and "has 6" in finding.message
        assert plan.blocking


@pytest.mark.parametrize(("parallel", "max_creating"), [(3, None), (5, 3), (1, None)])
def test_swaps_that_fit_at_once_have_no_subnet_capacity_finding(parallel: int, max_creating: int | None) -> None:
    options = PlanOptions(parallel=parallel, max_creating=max_creating)
    plans, facts = fleet(10, options, free=6)
    result = fleet_findings(plans, facts, options, QuotaUsage())
    assert all(found(p, "subnet-capacity") == [] for p in result)


def test_subnet_capacity_ignores_swaps_that_do_not_clone() -> None:
    options = PlanOptions(parallel=5)
    facts = [make_facts(make_lb(id=f"lb-{i}", topology="ACTIVE_STANDBY"), subnet_free={V4: 0}) for i in range(5)]
    plans = [evaluate(f, options) for f in facts]
    assert {p.strategy for p in plans} == {"failover"}
    result = fleet_findings(plans, facts, options, None)
    assert all(p.findings == () for p in result)  # nor compute findings: a failover builds no clone


def test_compute_unknown_is_informational() -> None:
    options = PlanOptions(parallel=2)
    plans, facts = fleet(2, options, free=100, topology="ACTIVE_STANDBY")
    first, second = fleet_findings(plans, facts, options, None)
    finding = only(first, "compute-unknown")  # said once for the fleet, on its first clone
    assert not finding.blocking and "4 more amphora" in finding.message
    assert found(second, "compute-unknown") == []
    assert not first.blocking and not second.blocking


@pytest.mark.parametrize(("instances_free", "blocked"), [(3, True), (4, False)])
def test_compute_quota_counts_the_amphorae_in_flight(instances_free: int, blocked: bool) -> None:
    options = PlanOptions(parallel=2)
    plans, facts = fleet(2, options, free=100, topology="ACTIVE_STANDBY")
    compute = QuotaUsage(limits={"instances": 10}, in_use={"instances": 10 - instances_free})
    for plan in fleet_findings(plans, facts, options, compute):
        assert found(plan, "compute-unknown") == []
        assert [f.blocking for f in found(plan, "compute-quota")] == ([True] if blocked else [])


def test_compute_quota_unlimited_is_silent() -> None:
    options = PlanOptions(parallel=5)
    plans, facts = fleet(5, options, free=100)
    assert all(p.findings == () for p in fleet_findings(plans, facts, options, QuotaUsage()))


def test_compute_quota_with_no_free_instance_blocks() -> None:
    options = PlanOptions(parallel=1)
    plans, facts = fleet(1, options, free=100)
    compute = QuotaUsage(limits={"instances": 10}, in_use={"instances": 10})
    (plan,) = fleet_findings(plans, facts, options, compute)
    assert only(plan, "compute-quota").blocking


def test_compute_quota_counts_only_the_swaps_there_are() -> None:
    options = PlanOptions(parallel=5)
    plans, facts = fleet(1, options, free=100)  # one SINGLE clone: one amphora
    compute = QuotaUsage(limits={"instances": 10}, in_use={"instances": 8})
    (plan,) = fleet_findings(plans, facts, options, compute)
    assert found(plan, "compute-quota") == []


# --- every code is covered -----------------------------------------------------------------------------------


def test_every_finding_code_of_plan_py_is_tested_here() -> None:
    import re
    from pathlib import Path

    import lbswap.plan
    import lbswap.planning.rules

    source = Path(lbswap.plan.__file__).read_text() + Path(lbswap.planning.rules.__file__).read_text()
    codes = set(re.findall(r'Finding\(\s*"([a-z-]+)"', source))
    tests = Path(__file__).read_text()
    assert len(codes) >= 22
    assert {c for c in codes if f'"{c}")' not in tests} == set()  # each code is asserted: found(plan, "code")


# --- why rotate: repair ----------------------------------------------------------------------------------------


def test_repair_takes_a_load_balancer_in_error_through_failover() -> None:
    facts = make_facts(with_fip(provisioning_status="ERROR"))
    plan = evaluate(facts, PlanOptions(repair=True))
    assert plan.strategy == "failover"
    assert not only(plan, "repair").blocking and not plan.blocking
    assert found(evaluate(facts, PlanOptions()), "not-active")[0].blocking


def test_a_rule_added_to_rules_speaks_last_with_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    def extra(facts: Facts, options: PlanOptions, decision: plan_mod.Decision) -> list[Finding]:
        return [Finding("extra", f"{facts.lb.id} {decision.strategy}", True)]

    monkeypatch.setattr(plan_mod, "RULES", [*plan_mod.RULES, extra])
    plan = plan_of(with_fip())
    assert plan.findings[-1] == Finding("extra", "lb-1 fip-swap", True)
    assert plan.blocking


# --- what the verify and the watch will do (planning/checks.py) --------------------------------------------------

LISTENERS = (
    Listener(protocol="HTTP", protocol_port=80, name="http"),
    Listener(protocol="TERMINATED_HTTPS", protocol_port=443),
    Listener(protocol="TCP", protocol_port=5432),
    Listener(protocol="UDP", protocol_port=53),
    Listener(protocol="SCTP", protocol_port=9),
    Listener(protocol="TCP", protocol_port=22, admin_state_up=False),
)


def test_the_plan_names_what_the_verify_sends_each_listener() -> None:
    from lbswap.planning.checks import check_plan

    lb = with_fip(listeners=LISTENERS)
    checks = check_plan(lb, "fip-swap", PlanOptions())
    assert checks.verify
    assert "temporary floating IP" in checks.verify_detail and FIP.floating_ip_address in checks.verify_detail
    assert dict(checks.listeners) == {
        "HTTP:80 (http)": "GET /, the same status class as the source",
        "TERMINATED_HTTPS:443": "GET /, the same status class as the source and the same certificate (no SNI)",
        "TCP:5432": "a TCP connect",
        "UDP:53": "not verified: UDP without --verify-udp-payload",
        "SCTP:9": "not verified: no probe for SCTP",
        "TCP:22": "not probed: the listener is disabled",
    }
    assert checks.watch_seconds == 60 and "60 s after the flip" in checks.watch_detail
    assert "past 2 error(s)" in checks.watch_detail
    options = PlanOptions(verify_path="/healthz", verify_host="www.example.org", verify_udp_payload="ping")
    detailed = dict(check_plan(lb, "fip-swap", options).listeners)
    assert detailed["HTTP:80 (http)"] == "GET /healthz (Host www.example.org), the same status class as the source"
    assert detailed["TERMINATED_HTTPS:443"].endswith("the same certificate (SNI www.example.org)")
    assert detailed["UDP:53"] == "a datagram exchange with --verify-udp-payload"


def test_the_plan_says_the_same_as_the_verify_for_what_it_does_not_probe() -> None:
    from lbswap.planning.checks import listener_check
    from lbswap.workflow.verify import verify_verdict

    for listener in LISTENERS[3:5]:  # UDP without a payload, SCTP: the verify records the plan's words
        assert listener_check(listener, PlanOptions()) == verify_verdict(listener, None, None)[1]


@pytest.mark.parametrize(
    ("strategy", "options", "lb", "verify", "verify_detail", "watch_detail"),
    [
        ("fip-swap", PlanOptions(verify=False), with_fip(), False, "skipped: --no-verify", "60 s after the flip"),
        ("fip-swap", PlanOptions(watch=0), with_fip(), True, "a temporary floating IP", "skipped: --watch 0"),
        ("fip-swap", PlanOptions(), make_lb(), False, "not verified: the source has no floating IP", "60 s"),
        ("failover", PlanOptions(), with_fip(), False, "no clone to verify: failover", "no flip to watch"),
        ("recreate", PlanOptions(), make_lb(), False, "no clone to verify: recreate", "no flip to watch"),
        (None, PlanOptions(), make_lb(), False, "no swap", "no flip to watch"),
    ],
)
def test_why_the_verify_or_the_watch_does_not_run(
    strategy: str | None, options: PlanOptions, lb: LoadBalancer, verify: bool, verify_detail: str, watch_detail: str
) -> None:
    from lbswap.planning.checks import check_plan

    checks = check_plan(lb, strategy, options)
    assert checks.verify is verify
    assert checks.verify_detail.startswith(verify_detail), checks.verify_detail
    assert checks.watch_detail.startswith(watch_detail), checks.watch_detail
    assert bool(checks.listeners) is verify


def _fleet(n: int, free: int | None, *, projects: int = 1, **options: object) -> list[LBPlan]:
    from lbswap.planning.checks import add_checks

    limits = {} if free is None else {"floatingip": 10}
    in_use = {} if free is None else {"floatingip": 10 - free}
    facts = [
        make_facts(with_fip(id=f"lb-{i}", project_id=f"p-{i % projects}"), quota=QuotaUsage(limits, in_use))
        for i in range(n)
    ]
    opts = PlanOptions(**options)  # type: ignore[arg-type]
    return add_checks([evaluate(f, opts) for f in facts], facts, opts)


def test_a_project_without_floating_ip_quota_for_the_temporary_address_blocks() -> None:
    (plan,) = _fleet(1, 0)
    finding = only(plan, "temp-fip-quota")
    assert finding.blocking and plan.blocking
    assert "project p-0's floating IP quota leaves 0" in finding.message and "--no-verify" in finding.message
    assert plan.checks.verify  # the plan still says what the verify would do
    assert found(_fleet(1, 1)[0], "temp-fip-quota") == []
    assert found(_fleet(1, None)[0], "temp-fip-quota") == []  # unlimited or unknown: no finding
    assert found(_fleet(1, 0, verify=False)[0], "temp-fip-quota") == []  # no verify, no temporary address
    over = _fleet(1, -2)  # already over its quota (lowered below use)
    assert "leaves 0" in only(over[0], "temp-fip-quota").message


def test_swaps_at_once_in_one_project_need_a_temporary_floating_ip_each() -> None:
    plans = _fleet(3, 2, parallel=3)
    for plan in plans:
        finding = only(plan, "temp-fip-quota")
        assert finding.blocking and "3 swaps of project p-0 at once" in finding.message
        assert "lower --parallel to 2" in finding.message
    assert all(found(p, "temp-fip-quota") == [] for p in _fleet(3, 2, parallel=2))
    assert all(found(p, "temp-fip-quota") == [] for p in _fleet(3, 1, parallel=1))
    assert all(found(p, "temp-fip-quota") == [] for p in _fleet(3, 1, projects=3, parallel=3))  # one each


def test_a_failover_needs_no_temporary_floating_ip() -> None:
    from lbswap.planning.checks import add_checks

    facts = [make_facts(with_fip(topology="ACTIVE_STANDBY"), quota=QuotaUsage({"floatingip": 0}, {}))]
    options = PlanOptions(strategy="failover")
    (plan,) = add_checks([evaluate(f, options) for f in facts], facts, options)
    assert plan.strategy == "failover" and found(plan, "temp-fip-quota") == []
    assert not plan.checks.verify and plan.checks.watch_seconds == 0
