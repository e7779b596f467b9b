"""Per load balancer: the strategy, the downtime it implies, and the pre-flight findings, with reasons.

``gather_facts`` only reads the cloud; ``evaluate`` is pure, so every rule is testable without a cloud.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from lbswap.clone import TargetChanges, clone_name, is_kubernetes_managed
from lbswap.clouds.base import Cloud
from lbswap.errors import BadInput, NotFound, UnknownLoadBalancer
from lbswap.model import Flavor, LBSummary, LoadBalancer, Provider, QuotaUsage, StackResource
from lbswap.planning import capacity
from lbswap.planning.addresses import Address, changing, client_addresses
from lbswap.planning.owners import Owner, owners

STRATEGIES = ("auto", "fip-swap", "failover", "recreate")

DOWNTIME = {
    "fip-swap": "none: new connections move to the clone at the flip; established ones drain on the source",
    "failover-ACTIVE_STANDBY": "no outage expected: the standby is rebuilt first, then the master; "
    "connections held by the rebuilt master are cut",
    "failover-SINGLE": "outage while the amphora is rebuilt (on Octavia typically 30-120 s); all connections cut",
    "recreate": "outage from the delete of the source until the new load balancer is ACTIVE (minutes); "
    "all connections cut",
}


@dataclass(frozen=True)
class PlanOptions:
    strategy: str = "auto"
    target: TargetChanges = field(default_factory=TargetChanges)
    target_flavor: str | None = None
    allow_downtime: bool = False
    image_tag: str = "amphora"
    parallel: int = 1
    accept_address_change: bool = False
    owned_tags: tuple[str, ...] = ()
    allow_owned: tuple[str, ...] = ()
    max_creating: int | None = None


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    blocking: bool


@dataclass(frozen=True)
class LBPlan:
    lb_id: str
    lb_name: str
    strategy: str | None
    downtime: str
    findings: tuple[Finding, ...]
    target: TargetChanges = field(default_factory=TargetChanges)
    kubernetes: bool = False
    topology: str = "SINGLE"
    addresses: tuple[Address, ...] = ()
    owners: tuple[Owner, ...] = ()

    @property
    def blocking(self) -> bool:
        return any(f.blocking for f in self.findings)


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, read from the cloud in one place."""

    lb: LoadBalancer
    quota: QuotaUsage
    subnet_free: dict[str, int | None]
    unreadable_refs: tuple[str, ...]
    provider: Provider | None
    target_flavor: Flavor | None = None
    target_flavor_missing: str | None = None
    existing_clones: tuple[LBSummary, ...] = ()
    newest_image: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: for a load balancer lbswap made as a clone: whether its source still exists (its swap is unfinished)
    clone_source_exists: bool = False
    stacks: tuple[StackResource, ...] = ()


def tls_refs(lb: LoadBalancer) -> list[str]:
    refs: list[str | None] = []
    for listener in lb.listeners:
        refs += [listener.default_tls_container_ref, listener.client_ca_tls_container_ref]
        refs += [listener.client_crl_container_ref, *listener.sni_container_refs]
    for pool in lb.pools:
        refs += [pool.tls_container_ref, pool.ca_tls_container_ref, pool.crl_container_ref]
    return sorted({r for r in refs if r})


def gather_facts(
    cloud: Cloud,
    lb_id: str,
    options: PlanOptions,
    *,
    everything: Sequence[LBSummary] | None = None,
    stacks: Sequence[StackResource] | None = None,
) -> Facts:
    """Read what the rules need. ``everything`` (all load balancers) and ``stacks`` save a listing per load
    balancer."""
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
    images = cloud.list_images(options.image_tag)
    listing = everything if everything is not None else cloud.list_load_balancers()
    return Facts(
        lb=lb,
        quota=cloud.get_quota(lb.project_id),
        subnet_free=subnet_free,
        unreadable_refs=tuple(r for r in tls_refs(lb) if not cloud.can_read_secret(r)),
        provider=provider,
        target_flavor=flavor,
        target_flavor_missing=missing,
        existing_clones=tuple(s for s in listing if s.clone_of == lb.id),
        newest_image=images[0].id if images else None,
        extra={"provider_name": provider_name},
        clone_source_exists=lb.clone_of is not None and any(s.id == lb.clone_of for s in listing),
        stacks=tuple(stacks if stacks is not None else cloud.list_stack_resources()),
    )


def _who(lb: LoadBalancer) -> str:
    return f"load balancer {lb.name or '(no name)'} ({lb.id})"


def _strategy(facts: Facts, options: PlanOptions, target: TargetChanges) -> tuple[str | None, list[Finding]]:
    lb = facts.lb
    who = _who(lb)
    has_fips = bool(lb.floating_ips)
    every_vip_has_fip = has_fips and not changing(client_addresses(lb, "fip-swap"))
    findings: list[Finding] = []
    wanted = options.strategy
    if wanted == "auto":
        if every_vip_has_fip:
            return "fip-swap", findings
        if has_fips and (options.accept_address_change or target.any):
            return "fip-swap", findings  # a floating IP moves; the plan names the addresses that change
        if has_fips and lb.topology == "ACTIVE_STANDBY":
            return "failover", findings  # keeps every address, with no outage expected
        if has_fips and not options.allow_downtime:
            return "fip-swap", findings  # blocked below until the address change is accepted
        if target.any:
            wanted = "recreate"
        elif lb.topology == "ACTIVE_STANDBY" or options.allow_downtime:
            wanted = "failover"
        else:
            findings.append(
                Finding(
                    "downtime-not-allowed",
                    f"{who} has no floating IP on its VIP and a SINGLE amphora: an upgrade costs an outage "
                    "(failover); add --allow-downtime to accept it, or give it a floating IP for a fip-swap",
                    True,
                )
            )
            return None, findings
    if wanted == "fip-swap" and not has_fips:
        findings.append(
            Finding(
                "no-fip",
                f"{who}: fip-swap needs a floating IP in front of its VIP and it has none: "
                "use --strategy failover or recreate with --allow-downtime",
                True,
            )
        )
    if wanted == "failover":
        if target.any:
            findings.append(
                Finding(
                    "failover-cannot-change",
                    f"{who}: failover cannot change flavor, topology, zone or provider: "
                    "use fip-swap (needs a floating IP) or recreate",
                    True,
                )
            )
        if lb.topology != "ACTIVE_STANDBY" and not options.allow_downtime:
            findings.append(
                Finding(
                    "downtime-not-allowed",
                    f"{who} has a SINGLE amphora: failover means an outage while it is rebuilt; "
                    "add --allow-downtime to accept it",
                    True,
                )
            )
        if lb.provider != "amphora":
            findings.append(
                Finding("failover-provider", f"{who}: provider {lb.provider} has no amphorae to fail over", True)
            )
    if wanted == "recreate":
        if has_fips:
            findings.append(
                Finding(
                    "recreate-with-fip",
                    f"{who} has floating IPs: recreate would leave them pointing at nothing; use fip-swap",
                    True,
                )
            )
        if not options.allow_downtime:
            findings.append(
                Finding(
                    "downtime-not-allowed",
                    f"{who}: recreate deletes it before creating the new one (an outage); "
                    "add --allow-downtime to accept it",
                    True,
                )
            )
    return wanted, findings


def _needs_clone_findings(facts: Facts, strategy: str) -> list[Finding]:
    lb = facts.lb
    who = _who(lb)
    findings: list[Finding] = []
    if strategy == "fip-swap":
        wanted = {
            "load_balancer": 1,
            "listener": len(lb.listeners),
            "pool": len(lb.pools),
            "member": sum(len(p.members) for p in lb.pools),
            "port": 1 + len(lb.additional_vips),
        }
        for kind, n in wanted.items():
            free = facts.quota.free(kind)
            if free is not None and free < n:
                findings.append(
                    Finding(
                        "quota",
                        f"{who}: the clone needs {n} {kind}(s) but the project's quota leaves {max(free, 0)}: "
                        "raise the quota (openstack loadbalancer quota set / openstack quota set)",
                        True,
                    )
                )
        needed = _clone_need(facts).addresses()
        for subnet, n in needed.items():
            free_addresses = facts.subnet_free.get(subnet)
            if free_addresses is not None and free_addresses < n:
                findings.append(
                    Finding(
                        "subnet-full",
                        f"{who}: VIP subnet {subnet} has {free_addresses} free address(es), the clone needs {n} "
                        "(its VIP and one per amphora): free addresses or extend the subnet's allocation pool",
                        True,
                    )
                )
    for ref in facts.unreadable_refs:
        findings.append(
            Finding(
                "tls-unreadable",
                f"{who}: you cannot read TLS reference {ref}, so the clone cannot use it: "
                "grant your user read access to the secret (Barbican ACL) or run as its owner",
                True,
            )
        )
    return findings


def _clone_need(facts: Facts) -> capacity.CloneNeed:
    lb = facts.lb
    topology = (facts.target_flavor.topology if facts.target_flavor else None) or lb.topology
    return capacity.CloneNeed(lb.id, (lb.vip_subnet_id, *(v.subnet_id for v in lb.additional_vips)), topology)


def _address_findings(
    lb: LoadBalancer, strategy: str | None, addresses: list[Address], options: PlanOptions
) -> list[Finding]:
    changes = changing(addresses)
    if not changes or strategy != "fip-swap":
        return []
    names = ", ".join(a.describe() for a in changes)
    if options.accept_address_change:
        return [Finding("address-change", f"{_who(lb)}: these addresses change at the retire: {names}", False)]
    alternative = (
        "or --strategy failover (keeps every address, no outage expected on ACTIVE_STANDBY)"
        if lb.topology == "ACTIVE_STANDBY"
        else "or --strategy failover --allow-downtime (keeps every address, with an outage)"
    )
    return [
        Finding(
            "address-change",
            f"{_who(lb)}: a fip-swap changes {names} (no floating IP in front of it; Neutron floating IPs are "
            f"IPv4 only): add --accept-address-change once its clients can follow, {alternative}",
            True,
        )
    ]


def _owner_findings(lb: LoadBalancer, found: list[Owner], strategy: str | None, options: PlanOptions) -> list[Finding]:
    if strategy not in ("fip-swap", "recreate"):
        return []  # failover keeps the load balancer and its ids
    findings = []
    for owner in found:
        allowed = owner.kind in options.allow_owned
        findings.append(
            Finding(
                "owned",
                f"{_who(lb)} is held by {owner.detail}: a {strategy} gives it new ids; {owner.follow_up}"
                + ("" if allowed else f" (add --allow-owned {owner.kind} to proceed)"),
                not allowed,
            )
        )
    return findings


def _provider_findings(facts: Facts) -> list[Finding]:
    lb, provider = facts.lb, facts.provider
    name = facts.extra.get("provider_name", lb.provider)
    if provider is None:
        return [Finding("provider-missing", f"{_who(lb)}: provider {name} does not exist in this cloud", True)]
    findings = []
    for listener in lb.listeners:
        if listener.protocol not in provider.listener_protocols:
            findings.append(
                Finding(
                    "provider-protocol",
                    f"{_who(lb)}: provider {name} has no {listener.protocol} listeners "
                    f"(listener {listener.name or listener.protocol_port}): choose another provider",
                    True,
                )
            )
    for pool in lb.pools:
        if pool.lb_algorithm not in provider.lb_algorithms:
            findings.append(
                Finding(
                    "provider-algorithm",
                    f"{_who(lb)}: provider {name} has no {pool.lb_algorithm} algorithm "
                    f"(pool {pool.name or pool.id}): choose another provider",
                    True,
                )
            )
    return findings


def evaluate(facts: Facts, options: PlanOptions) -> LBPlan:
    """The plan for one load balancer. Pure."""
    lb = facts.lb
    who = _who(lb)
    findings: list[Finding] = []
    target = options.target
    if facts.target_flavor is not None:
        target = dataclasses.replace(target, flavor_id=facts.target_flavor.id)
    if facts.target_flavor_missing:
        findings.append(
            Finding(
                "flavor-missing",
                f"{who}: target flavor {facts.target_flavor_missing} does not exist: "
                "see `openstack loadbalancer flavor list`",
                True,
            )
        )
    if lb.provisioning_status != "ACTIVE":
        advice = (
            "repair it first (openstack loadbalancer failover) or leave it out"
            if lb.provisioning_status == "ERROR"
            else "wait until it is ACTIVE, then plan again"
        )
        findings.append(Finding("not-active", f"{who} is {lb.provisioning_status}: {advice}", True))
    for clone in facts.existing_clones:
        findings.append(
            Finding(
                "clone-exists",
                f"{who} already has an lbswap clone {clone.id} (campaign {clone.campaign}): "
                f"resume or roll back that campaign first (lbswap resume {clone.campaign})",
                True,
            )
        )
    if lb.clone_of and facts.clone_source_exists:  # once its source is retired, a clone is an ordinary LB
        findings.append(
            Finding("is-clone", f"{who} is an lbswap clone still in campaign {lb.campaign}: finish it first", True)
        )
    strategy, strategy_findings = _strategy(facts, options, target)
    findings += strategy_findings
    if strategy in ("fip-swap", "recreate"):
        findings += _needs_clone_findings(facts, strategy)
        findings += _provider_findings(facts)
    addresses = client_addresses(lb, strategy)
    findings += _address_findings(lb, strategy, addresses, options)
    found = owners(lb, facts.stacks, options.owned_tags)
    findings += _owner_findings(lb, found, strategy, options)
    kubernetes = is_kubernetes_managed(lb)
    if kubernetes and strategy == "fip-swap":
        findings.append(
            Finding(
                "kubernetes",
                f"{who}: the clone is named {clone_name(lb)} until the source is retired, then takes its name",
                False,
            )
        )
    newest = facts.newest_image
    if newest and lb.amphorae and all(a.image_id == newest for a in lb.amphorae) and not target.any:
        findings.append(Finding("up-to-date", f"{who} already runs the newest image {newest}", False))
    downtime = "-"
    if strategy == "failover":
        downtime = DOWNTIME[f"failover-{lb.topology}" if lb.topology == "ACTIVE_STANDBY" else "failover-SINGLE"]
    elif strategy:
        downtime = DOWNTIME[strategy]
    return LBPlan(
        lb_id=lb.id,
        lb_name=lb.name,
        strategy=strategy,
        downtime=downtime,
        findings=tuple(findings),
        target=target,
        kubernetes=kubernetes,
        topology=lb.topology,
        addresses=tuple(addresses),
        owners=tuple(found),
    )


def make_plans(cloud: Cloud, lb_ids: Sequence[str], options: PlanOptions) -> list[LBPlan]:
    everything = cloud.list_load_balancers()
    stacks = cloud.list_stack_resources()
    facts = [gather_facts(cloud, lb_id, options, everything=everything, stacks=stacks) for lb_id in lb_ids]
    plans = [evaluate(f, options) for f in facts]
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
