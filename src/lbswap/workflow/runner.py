"""Campaigns: run swaps (in parallel), resume them after a crash, roll them back, finalize kept sources.

Each swap is two taskflow flows persisted in the journal (see flows.py), driven by swap.py; fleet.py walks a
campaign's swaps (canary, parallel, circuit breaker). Progress is reported through ``on_event``; nothing here
prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from lbswap.clouds import open_cloud
from lbswap.clouds.base import Cloud
from lbswap.errors import LbswapError, WrongCloud
from lbswap.journal import CampaignRow, Journal, Lease, SwapRow
from lbswap.scaleout.leases import refuse_held_swaps
from lbswap.state import TERMINAL, SwapState
from lbswap.workflow.context import Slots, SwapOptions
from lbswap.workflow.fleet import CampaignDriver, FleetPolicy
from lbswap.workflow.guard import Guard, StopRequest
from lbswap.workflow.results import (
    CampaignResult,
    Event,
    EventSink,
    SwapResult,
    campaign_result,
    new_campaign_id,
    pending_swaps,
    swap_options,
)

__all__ = [
    "CampaignResult",
    "Event",
    "EventSink",
    "FleetPolicy",
    "StopRequest",
    "SwapOptions",
    "SwapResult",
    "finalize",
    "new_campaign_id",
    "resume",
    "rollback",
    "run_campaign",
    "status",
]


def check_cloud(campaign: CampaignRow, cloud: Cloud) -> None:
    """I10: a campaign is driven only against the cloud it was made on.

    :raises WrongCloud: ``cloud`` is another cloud; nothing was changed.
    """
    here = cloud.identity()
    if campaign.cloud and campaign.cloud != here:
        raise WrongCloud(
            f"campaign {campaign.id} belongs to cloud {campaign.cloud} (backend {campaign.backend}), not to "
            f"{here}: run it against its own cloud (or leave out --backend/--os-cloud); nothing was changed"
        )


def run_campaign(
    cloud: Cloud,
    journal: Journal,
    plans: Sequence[Any],
    options: SwapOptions,
    *,
    parallel: int = 1,
    policy: FleetPolicy | None = None,
    on_event: EventSink | None = None,
    campaign_id: str | None = None,
    stop: StopRequest | None = None,
) -> CampaignResult:
    """Record a campaign for the non-blocked plans and run it (``policy``: canary and circuit breaker;
    without one, ``parallel`` swaps at a time and no breaker). This process holds the campaign's lease while
    it runs.

    :raises LockHeld: another unfinished campaign holds one of the load balancers; nothing was changed.
    :raises StopSwap: ``stop`` was set, or the lease or the journal was lost: ``lbswap resume`` continues.
    """
    campaign_id = campaign_id or new_campaign_id()
    swaps = pending_swaps(plans)
    policy = policy or FleetPolicy(parallel=parallel)
    stored = {**dataclasses.asdict(options), "fleet": dataclasses.asdict(policy)}
    lease = journal.create_campaign(
        campaign_id, backend=cloud.spec(), options=stored, cloud=cloud.identity(), swaps=swaps
    )
    guard = Guard(journal, lease, stop)
    try:
        runner = CampaignDriver(journal, campaign_id, cloud, options, on_event, guard)
        runner.drive(runner.swaps(), policy)
    finally:
        guard.close()
    return campaign_result(journal, campaign_id)


def _drivers(
    journal: Journal,
    campaign_ids: Sequence[str],
    cloud: Cloud | None,
    on_event: EventSink | None,
    stop: StopRequest | None,
) -> list[CampaignDriver]:
    """A runner per campaign, each with its lease taken; all or none (a held lease releases the others).

    :raises WrongCloud: a campaign belongs to another cloud than ``cloud``.
    :raises LeaseHeld: another live process drives one of them, or a conductor one of their swaps.
    """
    stop = stop or StopRequest()
    taken: list[Lease] = []
    opened: list[Cloud] = []
    try:
        clouds = []
        for cid in campaign_ids:
            campaign = journal.campaign(cid)
            here = cloud
            if here is None:
                here = open_cloud(campaign.backend)
                opened.append(here)
            check_cloud(campaign, here)
            clouds.append((campaign, here))
        for cid in campaign_ids:  # a conductor drives one of its swaps: refuse before writing anything
            refuse_held_swaps(journal.path, cid)
        for cid in campaign_ids:
            taken.append(journal.take_lease(cid))
        for cid in campaign_ids:  # again: one may have taken a swap's lease meanwhile; now the campaign's keeps
            refuse_held_swaps(journal.path, cid)  # conductors from taking any
    except BaseException:
        for lease in taken:
            journal.release_lease(lease)
        for c in opened:
            c.close()
        raise
    return [
        CampaignDriver(
            journal, campaign.id, here, swap_options(campaign.options), on_event, Guard(journal, lease, stop)
        )
        for (campaign, here), lease in zip(clouds, taken, strict=True)
    ]


def _close(runners: Sequence[CampaignDriver]) -> None:
    for runner in runners:
        runner.guard.close()


def _needs_resume(rows: Sequence[SwapRow]) -> bool:
    return any(
        r.state in (SwapState.PENDING, SwapState.RUNNING) or (r.state == SwapState.FAILED and r.phase != "end")
        for r in rows
    )


def resume(
    journal: Journal,
    campaign_id: str | None = None,
    *,
    on_event: EventSink | None = None,
    cloud: Cloud | None = None,
    parallel: int | None = None,
    stop: StopRequest | None = None,
) -> list[CampaignResult]:
    """Finish every unfinished swap of one campaign (or of all): re-run what was in flight, retry what
    failed forward, and complete rollbacks that a crash interrupted. The campaign's stored fleet policy
    (parallel, canary, breaker) holds unless ``parallel`` overrides it.

    :raises LeaseHeld: another live process drives one of the campaigns; nothing was changed.
    :raises WrongCloud: a campaign belongs to another cloud than ``cloud``; nothing was changed.
    """
    ids = [campaign_id] if campaign_id else [c.id for c in journal.campaigns()]
    todo_ids = [cid for cid in ids if _needs_resume(journal.swaps(cid))]
    runners = _drivers(journal, todo_ids, cloud, on_event, stop)
    try:
        for runner in runners:
            rows = journal.swaps(runner.campaign_id)
            todo = [
                s
                for s in runner.swaps()
                if s.row.state in (SwapState.PENDING, SwapState.RUNNING, SwapState.FAILED) and s.row.phase != "end"
            ]
            stored = FleetPolicy(**journal.campaign(runner.campaign_id).options.get("fleet", {}))
            canary_left = sum(1 for r in rows[: stored.canary] if r.state not in TERMINAL and r.state != SwapState.KEPT)
            policy = dataclasses.replace(stored, canary=canary_left)
            if parallel:
                policy = dataclasses.replace(policy, parallel=parallel)
            runner.drive(todo, policy)
    finally:
        _close(runners)
    return [campaign_result(journal, cid) for cid in ids if campaign_id or cid in todo_ids]


def rollback(
    journal: Journal,
    campaign_id: str,
    *,
    lb_id: str | None = None,
    on_event: EventSink | None = None,
    cloud: Cloud | None = None,
    stop: StopRequest | None = None,
) -> CampaignResult:
    """Undo swaps that have not passed their point of no return: flip back, then delete the clone.

    :raises JournalError: no such campaign or load balancer in it.
    :raises LeaseHeld: another live process drives the campaign; nothing was changed.
    :raises WrongCloud: the campaign belongs to another cloud than ``cloud``; nothing was changed.
    """
    journal.campaign(campaign_id)
    if lb_id:
        journal.swap(campaign_id, lb_id)
    (runner,) = _drivers(journal, [campaign_id], cloud, on_event, stop)
    try:
        for swap in runner.swaps(lb_id):
            if swap.row.state in (SwapState.DONE, SwapState.ROLLED_BACK) and not lb_id:
                continue
            try:
                swap.rollback()
            except LbswapError as exc:
                swap.record_result("error", str(exc))
            if runner.guard.stop.is_set():
                raise runner.guard.stop.error()
    finally:
        _close([runner])
    return campaign_result(journal, campaign_id)


def finalize(
    journal: Journal,
    campaign_id: str,
    *,
    on_event: EventSink | None = None,
    cloud: Cloud | None = None,
    stop: StopRequest | None = None,
) -> CampaignResult:
    """Retire the sources a campaign kept (``--keep-source``).

    :raises LeaseHeld: another live process drives the campaign; nothing was changed.
    :raises WrongCloud: the campaign belongs to another cloud than ``cloud``; nothing was changed.
    """
    journal.campaign(campaign_id)
    (runner,) = _drivers(journal, [campaign_id], cloud, on_event, stop)
    try:
        runner.drive([s for s in runner.swaps() if s.row.state == SwapState.KEPT], FleetPolicy(), finalize=True)
    finally:
        _close([runner])
    return campaign_result(journal, campaign_id)


def status(journal: Journal, campaign_id: str | None = None) -> list[CampaignResult]:
    ids = [campaign_id] if campaign_id else [c.id for c in journal.campaigns()]
    return [campaign_result(journal, cid) for cid in ids]


def drive_swap(
    journal: Journal,
    campaign_id: str,
    lb_id: str,
    cloud: Cloud,
    guard: Guard,
    on_event: EventSink | None = None,
    creating: Slots | None = None,
) -> SwapRow:
    """Drive one swap of a campaign as ``resume`` would, fenced by ``guard`` (a lease the caller took and
    closes): lbswap.scaleout's conductor, whose ``creating`` slots are kept in the journal (``--max-creating``
    across conductors). A stop (signal, lost lease, journal) sets ``guard.stop``."""
    options = swap_options(journal.campaign(campaign_id).options)
    runner = CampaignDriver(journal, campaign_id, cloud, options, on_event, guard)
    if creating is not None:
        runner.creating = creating
    (swap,) = runner.swaps(lb_id)
    swap.drive()
    return swap.row
