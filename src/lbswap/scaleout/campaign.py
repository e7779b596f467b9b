"""``lbswap run --jobboard``: record the campaign in the journal as ``run`` does, post one job per swap, and
(``--wait``) follow the journal until the conductors have ended every swap.

A job's details are the campaign id and the load balancer id, nothing else: no credentials, no cloud
configuration. Each conductor brings its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from lbswap.clouds.base import Cloud
from lbswap.errors import StopSwap
from lbswap.journal import Journal
from lbswap.scaleout.board import Board, connected
from lbswap.workflow.results import pending_swaps
from lbswap.workflow.runner import CampaignResult, FleetPolicy, SwapOptions, new_campaign_id, status


def post_campaign(
    cloud: Cloud,
    journal: Journal,
    plans: Sequence[Any],
    options: SwapOptions,
    policy: FleetPolicy,
    board: Board,
    *,
    campaign_id: str | None = None,
) -> tuple[str, int]:
    """Record the campaign for the non-blocked plans and post a job per swap; returns (campaign id, jobs).

    The board is reached before anything is recorded: an unreachable board changes nothing.

    :raises LockHeld: another unfinished campaign holds one of the load balancers; nothing was changed.
    :raises ConfigError: the board cannot be reached.
    """
    campaign_id = campaign_id or new_campaign_id()
    swaps = pending_swaps(plans)
    stored = {**dataclasses.asdict(options), "fleet": dataclasses.asdict(policy), "jobboard": board.shown()}
    with connected(board) as jobboard:
        lease = journal.create_campaign(
            campaign_id, backend=cloud.spec(), options=stored, cloud=cloud.identity(), swaps=swaps
        )
        journal.release_lease(lease)  # the conductors drive it, each swap under a lease of its own
        for lb_id, _plan, _result in swaps:
            jobboard.post(f"lbswap swap {lb_id}", details={"campaign": campaign_id, "lb": lb_id})
    return campaign_id, len(swaps)


def counts(result: CampaignResult) -> dict[str, int]:
    found: dict[str, int] = {}
    for swap in result.swaps:
        found[swap.state] = found.get(swap.state, 0) + 1
    return found


def wait(
    journal: Journal,
    campaign_id: str,
    *,
    poll: float = 1.0,
    on_change: Callable[[CampaignResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CampaignResult:
    """Follow the campaign in the journal until no swap is pending or running; ``on_change`` sees every
    change of the counts per state.

    :raises StopSwap: interrupted (exit 130); the conductors go on.
    """
    seen: dict[str, int] | None = None
    try:
        while True:
            (result,) = status(journal, campaign_id)
            now = counts(result)
            if now != seen and on_change is not None:
                on_change(result)
            seen = now
            if result.state != "unfinished":
                return result
            sleep(poll)
    except KeyboardInterrupt:
        raise StopSwap(
            f"stopped waiting; the conductors go on with campaign {campaign_id}: `lbswap status {campaign_id}`",
            exit_code=130,
        ) from None
