"""What a campaign reports: the events of its swaps as they happen, and each swap's result as the operator
reads it (``lbswap status``, ``-f json``)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbswap.journal import Journal
from lbswap.state import SwapState
from lbswap.workflow.context import SwapOptions


@dataclass(frozen=True)
class Event:
    """One step of one swap started, ended or said something.

    ``at`` is read from the clock the swap waits on (``Cloud.clock``, which the runner injects into every swap):
    the wall clock on a real cloud, the simulated one on the fake. Every event of a campaign takes this one
    clock, so ``at`` values compare with each other and with the ``at`` of the flips in the swap's result.
    """

    campaign_id: str
    lb_id: str
    lb_name: str
    step: str
    status: str
    at: float
    message: str = ""


EventSink = Callable[[Event], None]


@dataclass
class SwapResult:
    id: str
    name: str
    strategy: str
    state: str
    clone_id: str | None = None
    flips: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    kubernetes_annotation: str | None = None
    downtime: str = ""
    keep_until: float | None = None
    #: seconds between the first and the last flip of this load balancer (one compare-and-swap per floating
    #: IP, in sequence): in that window some of its floating IPs reach the clone and others still the source
    flip_window_seconds: float | None = None
    verify: dict[str, Any] | None = None  # the traffic check of the clone before the flip (workflow/verify.py)
    watch: dict[str, Any] | None = None  # the watch after the flip
    #: per floating IP, when the API answered its flip and when new connections through it reached the clone
    #: (workflow/settle.py): [{"floating_ip_address", "api_answered_at", "clone_served_at", "delay_seconds",
    #: "source_served_until", "outcome", "probes"[, "reason"]}]
    settle: list[dict[str, Any]] | None = None
    #: after a rollback moved floating IPs back: the same records, the source in the clone's role (its
    #: ``clone_served_at`` is when the source served again); the clone is deleted only after that wait
    settle_back: list[dict[str, Any]] | None = None
    #: floating IPs a move back did not bring back to the source, each with why (someone else moved or deleted
    #: it, or the move back gave up): check them by hand
    left_alone: list[str] = field(default_factory=list)
    #: how the source's drain ended (workflow/waits.py ``drain``): {"drained", "open", "seconds",
    #: "deadline_seconds"}; drained False with connections open: they were cut at the retire
    drain: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CampaignResult:
    campaign_id: str
    backend: str
    state: str
    swaps: list[SwapResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "backend": self.backend,
            "state": self.state,
            "swaps": [s.to_json() for s in self.swaps],
        }


def new_campaign_id() -> str:
    return time.strftime("c-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


def pending_swaps(plans: Sequence[Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """The swaps a campaign records for its plans, as ``Journal.create_campaign`` takes them: one per plan
    with a strategy and no blocking finding, each with its plan and a ``pending`` result."""
    swaps = []
    for plan in (p for p in plans if p.strategy and not p.blocking):
        plan_json = {
            "lb_id": plan.lb_id,
            "lb_name": plan.lb_name,
            "strategy": plan.strategy,
            "target": dataclasses.asdict(plan.target),
            "kubernetes": plan.kubernetes,
            "downtime": plan.downtime,
        }
        result = SwapResult(plan.lb_id, plan.lb_name, plan.strategy, SwapState.PENDING, downtime=plan.downtime)
        swaps.append((plan.lb_id, plan_json, result.to_json()))
    return swaps


def campaign_result(journal: Journal, campaign_id: str) -> CampaignResult:
    """The campaign as the operator reads it, from the journal; private resume data left out."""
    campaign = journal.campaign(campaign_id)
    swaps = []
    for row in journal.swaps(campaign_id):
        data = {k: v for k, v in row.result.items() if not k.startswith("_")}
        swaps.append(SwapResult(**data))
    states_ = {s.state for s in swaps}
    if states_ & {SwapState.PENDING, SwapState.RUNNING}:
        state = "unfinished"
    elif SwapState.KEPT in states_:
        state = "kept"
    elif SwapState.SKIPPED in states_:
        state = "stopped by the circuit breaker"
    elif states_ <= {"done"}:
        state = "done"
    else:
        state = "finished with failures"
    return CampaignResult(campaign_id, campaign.backend, state, swaps)


def swap_options(campaign_options: dict[str, Any]) -> SwapOptions:
    """The swap options stored with a campaign (other keys, such as the fleet policy, left out)."""
    names = {f.name for f in dataclasses.fields(SwapOptions)}
    return SwapOptions(**{k: v for k, v in campaign_options.items() if k in names})
