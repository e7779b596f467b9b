"""After the flip, until new connections through each moved floating IP reach the clone: the data plane follows
the API late (Neutron's L3 agent rewrites its NAT rules after the PUT answered: 0.6-1.3 s measured on a real
one), and until it did, clients still reach the source, which the drain must not retire yet.

:func:`judge` is pure and table-tested; :func:`wait_served_by_clone` probes through the Cloud protocol on the
cloud's clock, and only where the backend says which load balancer served a probe (``ProbeResult.served_by``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbswap.clouds.base import ProbeResult
from lbswap.model import Listener, LoadBalancer
from lbswap.planning.checks import NOT_PROBED, listener_label
from lbswap.workflow.context import SwapContext
from lbswap.workflow.verify import _probe

# what one probe says about the data plane of a floating IP just moved from the source to the clone
CLONE, SOURCE, OTHER, FAILED, UNKNOWN, UNREACHABLE = "clone", "source", "other", "failed", "unknown", "unreachable"

SERVED = "served by the clone"
TIMED_OUT = "timed out"


def judge(probe: ProbeResult | None, *, source_id: str, clone_id: str) -> str:
    """Who served a probe through a floating IP moved from the source to the clone.

    CLONE, SOURCE or OTHER (another load balancer) where the backend told; UNKNOWN where it answered without
    telling (it cannot: openstack today); FAILED where nothing answered (try again); UNREACHABLE where the
    backend cannot send traffic there, or nothing was probed (None).
    """
    if probe is None or not probe.reachable:
        return UNREACHABLE
    if probe.served_by is not None:
        if probe.served_by == clone_id:
            return CLONE
        return SOURCE if probe.served_by == source_id else OTHER
    return UNKNOWN if probe.ok else FAILED


@dataclass
class Settle:
    """One floating IP's wait: when the API answered its flip, when the clone served it, and why not."""

    floating_ip_address: str
    api_answered_at: float | None
    clone_served_at: float | None = None
    #: when the last probe that still met the source opened its connection (None: none did, so the delay is only
    #: an upper bound: the data plane may have followed before the first probe, whose own overhead it includes)
    source_served_until: float | None = None
    outcome: str = ""
    probes: int = 0
    reason: str | None = None
    seen: list[str] = field(default_factory=list)  # what each probe met (not recorded)

    def to_json(self) -> dict[str, Any]:
        delay = None
        if self.clone_served_at is not None and self.api_answered_at is not None:
            delay = round(self.clone_served_at - self.api_answered_at, 3)
        data: dict[str, Any] = {
            "floating_ip_address": self.floating_ip_address,
            "api_answered_at": self.api_answered_at,
            "clone_served_at": self.clone_served_at,
            "delay_seconds": delay,
            "source_served_until": self.source_served_until,
            "outcome": self.outcome,
            "probes": self.probes,
        }
        if self.reason:
            data["reason"] = self.reason
        return data

    @property
    def data_plane_behind(self) -> bool:
        """Timed out while probes still reached the source (or another load balancer): new connections do not
        reach the clone yet, and retiring the source would drop them."""
        return self.outcome == TIMED_OUT and any(s in (SOURCE, OTHER) for s in self.seen)


def probed_listener(ctx: SwapContext, source: LoadBalancer, answering: Iterable[str]) -> Listener | None:
    """The listener the wait probes: the first enabled one that can be probed and that the verify saw answer
    like the source (this host reaches it, and it is not failing on both); None when there is none."""
    wanted = set(answering)
    for listener in source.listeners:
        if not listener.admin_state_up or listener.protocol in NOT_PROBED:
            continue
        if listener.protocol == "UDP" and not ctx.options.verify_udp_payload:
            continue
        if listener_label(listener) in wanted:
            return listener
    return None


def wait_served_by_clone(
    ctx: SwapContext,
    source: LoadBalancer,
    clone_id: str,
    answered: Mapping[str, float | None],
    *,
    answering: Iterable[str] | None = None,
    back: bool = False,
) -> list[Settle]:
    """Probe through every floating IP in ``answered`` (address -> when the API answered its flip, None when
    unknown, e.g. moved by an attempt before a crash) every ``settle_interval`` until a probe is served by the
    clone, for at most ``settle_timeout`` seconds on the cloud's clock. All floating IPs are probed in each
    round, so the wait lasts as long as the slowest one.

    Probes the first listener the verify saw answer like the source (``answering``: its ``"answering"``); without
    one (None: the verify did not run) nothing is probed and the outcome is ``unknown``. Ends at once for a
    floating IP whose probe answered without saying who served it (the backend cannot tell) or that the backend
    cannot reach. Returns one :class:`Settle` per floating IP; a caller fails the swap on
    one whose :attr:`Settle.data_plane_behind`.

    ``back``: the floating IPs were just moved back to the source (a rollback), and the wait is for the source to
    serve them again before the clone is deleted; "clone" and "source" swap roles (see :func:`wait_back_on_source`).
    """
    toward, away = (source.id, clone_id) if back else (clone_id, source.id)
    toward_name, away_name = ("source", "clone") if back else ("clone", "source")
    options = ctx.options
    clock = ctx.cloud.clock
    waits = {address: Settle(address, at) for address, at in answered.items()}
    if options.settle_timeout <= 0:
        for settle in waits.values():
            settle.outcome = "skipped: --settle-timeout 0"
        return list(waits.values())
    listener = None if answering is None else probed_listener(ctx, source, answering)
    if listener is None:
        reason = "no listener the verify saw answer like the source"
        if answering is None:  # --no-verify: what the README advises where this host cannot reach floating IPs
            reason = "not probed: the verify did not run, so this host may not reach the floating IP"
        for settle in waits.values():
            settle.outcome, settle.reason = UNKNOWN, reason
        return list(waits.values())
    deadline = clock.now() + options.settle_timeout
    pending = dict(waits)
    last_error: dict[str, str] = {}
    while pending:
        ctx.check()
        for address, settle in list(pending.items()):
            probe = _probe(ctx, address, listener)
            seen = judge(probe, source_id=away, clone_id=toward)
            settle.probes += 1
            settle.seen.append(seen)
            if seen == CLONE:  # when its connection was opened where the backend says, else now (an upper bound)
                served_at = probe.served_at if probe is not None else None
                settle.clone_served_at = served_at if served_at is not None else clock.now()
                settle.outcome = SERVED
            elif seen == UNKNOWN:
                settle.outcome, settle.reason = UNKNOWN, f"the {ctx.cloud.kind} backend cannot tell who served a probe"
            elif seen == UNREACHABLE:
                error = probe.error if probe is not None else None
                settle.outcome, settle.reason = "not reachable", error or "this host cannot reach the floating IP"
            else:
                if seen == SOURCE and probe is not None:
                    settle.source_served_until = probe.served_at if probe.served_at is not None else clock.now()
                if seen == FAILED and probe is not None:
                    last_error[address] = probe.error or "failed"
                elif seen == OTHER and probe is not None:
                    last_error[address] = (
                        f"served by load balancer {probe.served_by}, neither {away_name} nor {toward_name}"
                    )
                continue
            del pending[address]
        if not pending or clock.now() >= deadline:
            break
        clock.sleep(min(options.settle_interval, max(deadline - clock.now(), 0.0)))
    for address, settle in pending.items():
        settle.outcome = TIMED_OUT
        sources = settle.seen.count(SOURCE)
        what = f"{sources} of {settle.probes} probe(s) still reached the {away_name}"
        if address in last_error:
            what += f"; last: {last_error[address]}"
        settle.reason = f"no probe served by the {toward_name} within {options.settle_timeout:g} s ({what})"
        if not settle.data_plane_behind:  # nothing answered at all: the watch judges the clone's answers
            settle.outcome = UNKNOWN
            settle.reason = f"no probe answered within {options.settle_timeout:g} s ({what})"
    return list(waits.values())


def wait_back_on_source(
    ctx: SwapContext, source: LoadBalancer, clone_id: str, moved: Mapping[str, float | None], answering: Any
) -> list[Settle]:
    """After a rollback moved floating IPs back to the source, until new connections through each reach the
    source again (bounded by ``settle_timeout``), so that deleting the clone next does not reset the connections
    the data plane still sends it (it follows the API late in this direction too). ``answering``: the verify's
    listeners (None: it did not run, nothing is probed). The outcome is only reported: the source serves either
    way, and the clone is deleted after the wait. ``clone_served_at`` of each :class:`Settle` is when the source
    served again.
    """
    if not moved:
        return []
    listed = list(answering) if isinstance(answering, list) else None
    return wait_served_by_clone(ctx, source, clone_id, moved, answering=listed, back=True)
