"""Per load balancer: the strategy, the downtime it implies, and the pre-flight findings, with reasons.

``gather_facts`` only reads the cloud; ``evaluate`` is pure, so every rule is testable without a cloud.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lbswap.clone import TargetChanges, clone_name, is_kubernetes_managed
from lbswap.clouds.base import Cloud
from lbswap.errors import BadInput, NotFound, UnknownLoadBalancer
from lbswap.model import LBSummary, LoadBalancer, Provider, QuotaUsage, StackResource
from lbswap.planning import capacity
from lbswap.planning.addresses import Address, client_addresses
from lbswap.planning.checks import add_checks
from lbswap.planning.owners import Owner, owners
from lbswap.planning.rules import (
    _address_findings,
    _clone_need,
    _needs_clone_findings,
    _owner_findings,
    _provider_findings,
    _repair_findings,
    _strategy,
)
from lbswap.planning.types import DOWNTIME, Facts, Finding, LBPlan, PlanOptions

__all__ = [
    "DOWNTIME",
    "RULES",
    "Decision",
    "Facts",
    "Finding",
    "LBPlan",
    "PlanOptions",
    "Rule",
    "decide",
    "evaluate",
    "fleet_findings",
    "gather_facts",
    "make_plans",
    "resolve_selection",
    "tls_refs",
]
from lbswap.planning.types import who as _who
from lbswap.rotation import ImageCatalog

STRATEGIES = ("auto", "fip-swap", "failover", "recreate")


def tls_refs(lb: LoadBalancer) -> list[str]:
    refs: list[str | None] = []
    for listener in lb.listeners:
        refs += [listener.default_tls_container_ref, listener.client_ca_tls_container_ref]
        refs += [listener.client_crl_container_ref, *listener.sni_container_refs]
    for pool in lb.pools:
        refs += [pool.tls_container_ref, pool.ca_tls_container_ref, pool.crl_container_ref]
    return sorted({r for r in refs if r})


class Listing:
    """Every load balancer, with its clones found by source: a plan's lookups cost O(1), not O(fleet)."""

    def __init__(self, everything: Sequence[LBSummary]) -> None:
        self.ids = {s.id for s in everything}
        self.clones: dict[str, list[LBSummary]] = {}
        for s in everything:
            if s.clone_of is not None:
                self.clones.setdefault(s.clone_of, []).append(s)


def gather_facts(
    cloud: Cloud,
    lb_id: str,
    options: PlanOptions,
    *,
    everything: Sequence[LBSummary] | Listing | None = None,
    stacks: Sequence[StackResource] | None = None,
) -> Facts:
    """Read what the rules need. ``everything`` (all load balancers, or their Listing) and ``stacks`` save a
    listing per load balancer."""
    lb = cloud.read_graph(lb_id)
    subnets = [lb.vip_subnet_id, *(v.subnet_id for v in lb.additional_vips)]
    subnet_free: dict[str, int | None] = {}
    for subnet in subnets:
        try:
            subnet_free[subnet] = cloud.subnet_free_addresses(subnet)
        except NotFound:
            subnet_free[subnet] = 0
    flavor, missing = None, None
    if options.target_flavor:
        try:
            flavor = cloud.get_flavor(options.target_flavor)
        except NotFound:
            missing = options.target_flavor
    provider_name = options.target.provider or (flavor.provider if flavor else None) or lb.provider
    try:
        provider: Provider | None = cloud.get_provider(provider_name)
    except NotFound:
        provider = None
    newest = ImageCatalog(cloud, options.image_tag, options.image_owner).newest(lb.flavor_id)
    if not isinstance(everything, Listing):
        everything = Listing(everything if everything is not None else cloud.list_load_balancers())
    listing = everything
    return Facts(
        lb=lb,
        quota=cloud.get_quota(lb.project_id),
        subnet_free=subnet_free,
        unreadable_refs=tuple(r for r in tls_refs(lb) if not cloud.can_read_secret(r)),
        provider=provider,
        target_flavor=flavor,
        target_flavor_missing=missing,
        existing_clones=tuple(listing.clones.get(lb.id, ())),
        newest_image=newest.id if newest else None,
        extra={"provider_name": provider_name},
        clone_source_exists=lb.clone_of is not None and lb.clone_of in listing.ids,
        stacks=tuple(stacks if stacks is not None else cloud.list_stack_resources()),
    )


@dataclass(frozen=True)
class Decision:
    """What the plan decided for one load balancer before its rules look: the target (the flavor resolved), the
    strategy (with the findings that explain it), and what the plan shows of it."""

    target: TargetChanges
    repairing: bool  # --repair of a load balancer in ERROR: a failover, whatever the strategy asked
    strategy: str | None
    strategy_findings: tuple[Finding, ...]
    addresses: tuple[Address, ...]
    owners: tuple[Owner, ...]
    kubernetes: bool


def decide(facts: Facts, options: PlanOptions) -> Decision:
    """The strategy and target for one load balancer. Pure."""
    lb = facts.lb
    target = options.target
    if facts.target_flavor is not None:
        target = dataclasses.replace(target, flavor_id=facts.target_flavor.id)
    repairing = options.repair and lb.provisioning_status == "ERROR"
    strategy: str | None
    if repairing:
        strategy, strategy_findings = "failover", _repair_findings(lb, target)
    else:
        strategy, strategy_findings = _strategy(facts, options, target)
    return Decision(
        target=target,
        repairing=repairing,
        strategy=strategy,
        strategy_findings=tuple(strategy_findings),
        addresses=tuple(client_addresses(lb, strategy)),
        owners=tuple(owners(lb, facts.stacks, options.owned_tags)),
        kubernetes=is_kubernetes_managed(lb),
    )


#: A rule: the findings about one load balancer, from its facts, the options and the decision. Pure.
Rule = Callable[[Facts, PlanOptions, Decision], Sequence[Finding]]


def _flavor_missing(facts: Facts, _options: PlanOptions, _decision: Decision) -> list[Finding]:
    if not facts.target_flavor_missing:
        return []
    message = f"target flavor {facts.target_flavor_missing} does not exist: see `openstack loadbalancer flavor list`"
    return [Finding("flavor-missing", f"{_who(facts.lb)}: {message}", True)]


def _provisioning(facts: Facts, _options: PlanOptions, decision: Decision) -> list[Finding]:
    lb, who = facts.lb, _who(facts.lb)
    if decision.repairing:
        message = (
            f"{who} is in ERROR: --repair fails it over whole (Octavia's advice); connections it still holds are cut"
        )
        return [Finding("repair", message, False)]
    if lb.provisioning_status == "ACTIVE":
        return []
    advice = (
        "repair it with --repair (a failover) or leave it out"
        if lb.provisioning_status == "ERROR"
        else "wait until it is ACTIVE, then plan again"
    )
    return [Finding("not-active", f"{who} is {lb.provisioning_status}: {advice}", True)]


def _clones(facts: Facts, _options: PlanOptions, _decision: Decision) -> list[Finding]:
    lb, who = facts.lb, _who(facts.lb)
    findings = [
        Finding(
            "clone-exists",
            f"{who} already has an lbswap clone {clone.id} (campaign {clone.campaign}): "
            f"resume or roll back that campaign first (lbswap resume {clone.campaign})",
            True,
        )
        for clone in facts.existing_clones
    ]
    if lb.clone_of and facts.clone_source_exists:  # once its source is retired, a clone is an ordinary LB
        findings.append(
            Finding("is-clone", f"{who} is an lbswap clone still in campaign {lb.campaign}: finish it first", True)
        )
    return findings


def _strategy_rule(_facts: Facts, _options: PlanOptions, decision: Decision) -> Sequence[Finding]:
    return decision.strategy_findings


def _clone_needs(facts: Facts, _options: PlanOptions, decision: Decision) -> list[Finding]:
    if decision.strategy not in ("fip-swap", "recreate"):
        return []
    return _needs_clone_findings(facts, decision.strategy) + _provider_findings(facts)


def _address_change(facts: Facts, options: PlanOptions, decision: Decision) -> list[Finding]:
    return _address_findings(facts.lb, decision.strategy, list(decision.addresses), options)


def _owned(facts: Facts, options: PlanOptions, decision: Decision) -> list[Finding]:
    return _owner_findings(facts.lb, list(decision.owners), decision.strategy, options)


def _kubernetes(facts: Facts, _options: PlanOptions, decision: Decision) -> list[Finding]:
    if not (decision.kubernetes and decision.strategy == "fip-swap"):
        return []
    lb = facts.lb
    message = f"{_who(lb)}: the clone is named {clone_name(lb)} until the source is retired, then takes its name"
    return [Finding("kubernetes", message, False)]


def _up_to_date(facts: Facts, options: PlanOptions, decision: Decision) -> list[Finding]:
    lb, newest = facts.lb, facts.newest_image
    if not (newest and lb.amphorae and all(a.image_id == newest for a in lb.amphorae) and not decision.target.any):
        return []
    then = "; --force rebuilds its amphorae anyway" if options.force else ""
    return [Finding("up-to-date", f"{_who(lb)} already runs the newest image {newest}{then}", False)]


#: The rules of one load balancer's plan, in the order its findings are shown. A new pre-flight check is a
#: function of this shape added here.
RULES: list[Rule] = [
    _flavor_missing,
    _provisioning,
    _clones,
    _strategy_rule,
    _clone_needs,
    _address_change,
    _owned,
    _kubernetes,
    _up_to_date,
]


def downtime(strategy: str | None, topology: str) -> str:
    """What the strategy costs the load balancer's clients, as the plan shows it."""
    if strategy == "failover":
        return DOWNTIME[f"failover-{topology}" if topology == "ACTIVE_STANDBY" else "failover-SINGLE"]
    return DOWNTIME[strategy] if strategy else "-"


def evaluate(facts: Facts, options: PlanOptions) -> LBPlan:
    """The plan for one load balancer: its decision, then every rule of :data:`RULES` in order. Pure."""
    lb = facts.lb
    decision = decide(facts, options)
    findings = [finding for rule in RULES for finding in rule(facts, options, decision)]
    return LBPlan(
        lb_id=lb.id,
        lb_name=lb.name,
        strategy=decision.strategy,
        downtime=downtime(decision.strategy, lb.topology),
        findings=tuple(findings),
        target=decision.target,
        kubernetes=decision.kubernetes,
        topology=lb.topology,
        addresses=decision.addresses,
        owners=decision.owners,
    )


def make_plans(cloud: Cloud, lb_ids: Sequence[str], options: PlanOptions) -> list[LBPlan]:
    everything = Listing(cloud.list_load_balancers())
    stacks = cloud.list_stack_resources()
    facts = [gather_facts(cloud, lb_id, options, everything=everything, stacks=stacks) for lb_id in lb_ids]
    plans = add_checks([evaluate(f, options) for f in facts], facts, options)
    return fleet_findings(plans, facts, options, cloud.service_compute_quota())


def fleet_findings(
    plans: Sequence[LBPlan], facts: Sequence[Facts], options: PlanOptions, compute: QuotaUsage | None
) -> list[LBPlan]:
    """What the swaps that run at once need together: VIP subnet addresses, the project's ports, Octavia's
    service project compute. Pure; adds findings to the plans concerned."""
    cloning = [(p, f) for p, f in zip(plans, facts, strict=True) if p.strategy in ("fip-swap", "recreate")]
    in_flight = capacity.at_once(options.parallel, options.max_creating)
    extra: dict[str, list[Finding]] = {}
    free: dict[str, int | None] = {}
    for _plan, fact in cloning:
        free.update(fact.subnet_free)
    needs = [_clone_need(f) for _p, f in cloning]
    short = capacity.subnet_shortfalls(needs, free, in_flight) if in_flight > 1 else {}
    for need, (plan, _fact) in zip(needs, cloning, strict=True):
        for subnet, (have, wanted, fits) in short.items():
            if subnet in need.addresses():
                extra.setdefault(plan.lb_id, []).append(
                    Finding(
                        "subnet-capacity",
                        f"{in_flight} clones at once need {wanted} addresses on VIP subnet {subnet}, which has {have} "
                        f"free: lower --parallel (or --max-creating) to {max(fits, 1)}, or free addresses",
                        True,
                    )
                )
        amps = capacity.amphorae(need.topology) * min(in_flight, len(needs))
        if compute is None and need is needs[0]:  # said once, on the first clone of the fleet
            extra.setdefault(plan.lb_id, []).append(
                Finding(
                    "compute-unknown",
                    "Octavia's service project compute quota cannot be read with these credentials: check that "
                    f"it has room for {amps} more amphora instance(s) at once",
                    False,
                )
            )
        elif compute is not None and (room := compute.free("instances")) is not None and room < amps:
            extra.setdefault(plan.lb_id, []).append(
                Finding(
                    "compute-quota",
                    f"Octavia's service project has room for {room} instance(s); "
                    f"{min(in_flight, len(needs))} clone(s) at once need {amps}: raise its quota or lower --parallel",
                    True,
                )
            )
    return [dataclasses.replace(p, findings=(*p.findings, *extra.get(p.lb_id, ()))) for p in plans]


def resolve_selection(
    cloud: Cloud,
    *,
    names_or_ids: Sequence[str],
    all_: bool = False,
    project_id: str | None = None,
    tag: str | None = None,
) -> list[LBSummary]:
    """The load balancers an operator selected, in the order named, without duplicates.

    :raises UnknownLoadBalancer: a name or id matches nothing.
    :raises BadInput: a name matches several load balancers.
    """
    listing = cloud.list_load_balancers(project_id=project_id)
    chosen: list[LBSummary] = []
    for wanted in names_or_ids:
        by_id = [lb for lb in listing if lb.id == wanted]
        matches = by_id or [lb for lb in listing if lb.name == wanted]
        if not matches:
            raise UnknownLoadBalancer(
                f"no load balancer has the id or name {wanted!r}: see `lbswap inventory`", lb=None
            )
        if len(matches) > 1:
            ids = ", ".join(m.id for m in matches)
            raise BadInput(f"the name {wanted!r} matches {len(matches)} load balancers ({ids}): select by id")
        chosen += matches
    if all_ or (tag and not names_or_ids) or (project_id and not names_or_ids):
        chosen += [lb for lb in listing if not tag or tag in lb.tags]
    if tag:
        chosen = [lb for lb in chosen if tag in lb.tags]
    seen: set[str] = set()
    return [lb for lb in chosen if not (lb.id in seen or seen.add(lb.id))]  # type: ignore[func-returns-value]
