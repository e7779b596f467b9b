"""The plan's rules per load balancer: strategy, what a clone needs, addresses, owners, provider. Pure."""

from __future__ import annotations

from lbswap.clone import TargetChanges
from lbswap.model import LoadBalancer
from lbswap.planning import capacity
from lbswap.planning.addresses import Address, changing, client_addresses
from lbswap.planning.owners import Owner
from lbswap.planning.types import Facts, Finding, PlanOptions
from lbswap.planning.types import who as _who


def _strategy(facts: Facts, options: PlanOptions, target: TargetChanges) -> tuple[str | None, list[Finding]]:
    """The strategy asked for (``auto`` chosen here), with the findings that block or explain it."""
    lb = facts.lb
    wanted = options.strategy
    if wanted == "auto":
        chosen, checked = _auto(lb, options, target)
        if chosen is None:
            return None, [
                Finding(
                    "downtime-not-allowed",
                    f"{_who(lb)} has no floating IP on its VIP and a SINGLE amphora: an upgrade costs an outage "
                    "(failover); add --allow-downtime to accept it, or give it a floating IP for a fip-swap",
                    True,
                )
            ]
        if not checked:
            return chosen, []
        wanted = chosen
    return wanted, _strategy_findings(lb, wanted, options, target)


def _auto(lb: LoadBalancer, options: PlanOptions, target: TargetChanges) -> tuple[str | None, bool]:
    """``--strategy auto``: the strategy, and whether the checks of a strategy asked for by name still run on it
    (they do where auto falls back to one without a floating IP). None: nothing fits without an outage the
    operator has not accepted."""
    has_fips = bool(lb.floating_ips)
    if has_fips and not changing(client_addresses(lb, "fip-swap")):
        return "fip-swap", False  # every VIP has a floating IP
    if has_fips and (options.accept_address_change or target.any):
        return "fip-swap", False  # a floating IP moves; the plan names the addresses that change
    if has_fips and lb.topology == "ACTIVE_STANDBY":
        return "failover", False  # keeps every address, with no outage expected
    if has_fips and not options.allow_downtime:
        return "fip-swap", False  # blocked later until the address change is accepted
    if target.any:
        return "recreate", True
    if lb.topology == "ACTIVE_STANDBY" or options.allow_downtime:
        return "failover", True
    return None, True


def _strategy_findings(lb: LoadBalancer, wanted: str, options: PlanOptions, target: TargetChanges) -> list[Finding]:
    who = _who(lb)
    findings: list[Finding] = []
    if wanted == "fip-swap" and not lb.floating_ips:
        findings.append(
            Finding(
                "no-fip",
                f"{who}: fip-swap needs a floating IP in front of its VIP and it has none: "
                "use --strategy failover or recreate with --allow-downtime",
                True,
            )
        )
    if wanted == "failover":
        findings += _failover_findings(lb, options, target)
    if wanted == "recreate":
        if lb.floating_ips:
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
    return findings


def _failover_findings(lb: LoadBalancer, options: PlanOptions, target: TargetChanges) -> list[Finding]:
    who = _who(lb)
    findings: list[Finding] = []
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
    return findings


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


def _repair_findings(lb: LoadBalancer, target: TargetChanges) -> list[Finding]:
    if lb.provider != "amphora":
        return [Finding("failover-provider", f"{_who(lb)}: provider {lb.provider} has no amphorae to fail over", True)]
    if target.any:
        return [
            Finding(
                "failover-cannot-change",
                f"{_who(lb)}: a repair (failover) cannot change flavor, "
                "topology, zone or provider: repair first, then upgrade",
                True,
            )
        ]
    return []


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
