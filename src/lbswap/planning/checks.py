"""What the verify before the flip and the watch after it will do, per load balancer, and whether its project has
room for the verify's temporary floating IP (a pre-flight finding, not a failure half-way). Pure."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from lbswap.model import FloatingIP, Listener, LoadBalancer
from lbswap.planning.types import CheckPlan, Facts, Finding, LBPlan, PlanOptions
from lbswap.planning.types import who as _who

HTTP_LIKE = ("HTTP", "TERMINATED_HTTPS", "PROMETHEUS")
NOT_PROBED = ("SCTP",)  # no probe for it: recorded as not verified
TEMP_FIP_QUOTA = "temp-fip-quota"


def listener_label(listener: Listener) -> str:
    label = f"{listener.protocol}:{listener.protocol_port}"
    return f"{label} ({listener.name})" if listener.name else label


def main_fip(lb: LoadBalancer) -> FloatingIP | None:
    """The floating IP in front of the main VIP (else any of the load balancer's): the verify compares the clone
    with the source through it, and the temporary floating IP comes from its network."""
    for fip in lb.floating_ips:
        if fip.port_id == lb.vip_port_id and fip.fixed_ip_address in (None, lb.vip_address):
            return fip
    return lb.floating_ips[0] if lb.floating_ips else None


def listener_check(listener: Listener, options: PlanOptions) -> str:
    """What the verify sends to one listener of the clone (and of the source, to compare)."""
    if not listener.admin_state_up:
        return "not probed: the listener is disabled"
    if listener.protocol in NOT_PROBED:
        return f"not verified: no probe for {listener.protocol}"
    if listener.protocol == "UDP":
        if not options.verify_udp_payload:
            return "not verified: UDP without --verify-udp-payload"
        return "a datagram exchange with --verify-udp-payload"
    if listener.protocol not in HTTP_LIKE:
        return "a TCP connect"
    host = f" (Host {options.verify_host})" if options.verify_host else ""
    what = f"GET {options.verify_path}{host}, the same status class as the source"
    if listener.protocol == "TERMINATED_HTTPS":
        sni = f"SNI {options.verify_host}" if options.verify_host else "no SNI"
        what += f" and the same certificate ({sni})"
    return what


def check_plan(lb: LoadBalancer, strategy: str | None, options: PlanOptions) -> CheckPlan:
    """The verify and the watch a swap of ``lb`` with ``strategy`` will run, or why not. Only a fip-swap has a
    clone beside its source to verify and to flip back from."""
    if strategy != "fip-swap":
        why = f"no clone to verify: {strategy} replaces the load balancer in place" if strategy else "no swap"
        return CheckPlan(verify_detail=why, watch_detail="no flip to watch")
    listeners: tuple[tuple[str, str], ...] = ()
    if not options.verify:
        verify_detail, verify = "skipped: --no-verify", False
    elif (front := main_fip(lb)) is None:
        verify_detail, verify = "not verified: the source has no floating IP", False
    else:
        verify = True
        network = front.floating_network_id or "the source's floating IP network"
        verify_detail = (
            f"a temporary floating IP from {network} on the clone's VIP, each listener compared with the source's "
            f"{front.floating_ip_address}, released before the flip (a listener this backend cannot reach: "
            "not verified)"
        )
        listeners = tuple((listener_label(x), listener_check(x, options)) for x in lb.listeners)
    if options.watch > 0:
        watch_detail = (
            f"{options.watch:g} s after the flip: the clone's health and request errors, and probes through the "
            f"moved floating IPs; flips back by itself past {options.watch_max_errors} error(s)"
        )
    else:
        watch_detail = "skipped: --watch 0"
    return CheckPlan(
        verify=verify,
        verify_detail=verify_detail,
        listeners=listeners,
        watch_seconds=options.watch,
        watch_detail=watch_detail,
    )


def add_checks(plans: Sequence[LBPlan], facts: Sequence[Facts], options: PlanOptions) -> list[LBPlan]:
    """Each plan with what its verify and watch will do, and a blocking finding where the load balancer's
    project has no floating IP quota left for the temporary address (for ``--parallel`` swaps of one project,
    one temporary floating IP each at once)."""
    checks = [check_plan(f.lb, p.strategy, options) for p, f in zip(plans, facts, strict=True)]
    verifying = Counter(f.lb.project_id for f, c in zip(facts, checks, strict=True) if c.verify)
    out = []
    for plan, fact, check in zip(plans, facts, checks, strict=True):
        extra: tuple[Finding, ...] = ()
        if check.verify:
            at_once = min(options.parallel, verifying[fact.lb.project_id])
            extra = temp_fip_findings(fact, at_once)
        out.append(dataclasses.replace(plan, checks=check, findings=(*plan.findings, *extra)))
    return out


def temp_fip_findings(facts: Facts, at_once: int = 1) -> tuple[Finding, ...]:
    """A blocking finding when the project's floating IP quota leaves fewer than ``at_once`` addresses (an
    unknown or unlimited quota is no finding). The temporary floating IP is made in the project of the clone's
    VIP port, the load balancer's."""
    free = facts.quota.free("floatingip")
    if free is None or free >= at_once:
        return ()
    lb = facts.lb
    project = lb.project_id or "(unknown)"
    if free >= 1:  # room for one swap's, not for every swap at once
        message = (
            f"{_who(lb)}: {at_once} swaps of project {project} at once need {at_once} temporary floating IPs for "
            f"their verify, and its floating IP quota leaves {free}: lower --parallel to {free}, or raise the quota"
        )
    else:
        message = (
            f"{_who(lb)}: the verify needs a temporary floating IP and project {project}'s floating IP quota "
            f"leaves {max(free, 0)}: raise it (openstack quota set --floating-ips), release an unused floating IP, "
            "or skip the verify with --no-verify"
        )
    return (Finding(TEMP_FIP_QUOTA, message, True),)
