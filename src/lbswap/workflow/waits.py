"""What steps and `lbswap rollback` share: waits on a load balancer's status, deletes guarded by I8, and the
clones and temporary floating IPs of a swap found by their marker tags (the cloud is the truth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lbswap.clouds.retry import transient
from lbswap.clouds.watch import StatusWatcher
from lbswap.errors import CloudError, Conflict, NotFound, SwapFailed, WaitFailed
from lbswap.model import MARKER_CAMPAIGN, MARKER_CLONE_OF, MARKER_TEMP_FIP, LBSummary
from lbswap.workflow.context import SwapContext


def find_clones(ctx: SwapContext) -> list[LBSummary]:
    """The clones this campaign made of this source, found by their marker tags (the cloud is the truth)."""
    return [
        lb
        for lb in ctx.cloud.list_load_balancers(tags=[MARKER_CLONE_OF + ctx.lb_id, MARKER_CAMPAIGN + ctx.campaign_id])
        if lb.clone_of == ctx.lb_id and MARKER_CAMPAIGN + ctx.campaign_id in lb.tags
    ]


def wait_status(ctx: SwapContext, lb_id: str, step: str, *, timeout: float, accept_error: bool = False) -> LBSummary:
    """Wait until a load balancer leaves ``PENDING_*``; ERROR fails unless ``accept_error``.

    Served by the campaign's status watcher (one list call per interval for all its swaps), or polls with
    backoff on the cloud's clock; a transient error of one read (a timeout, a 5xx, or a 429: the next read
    comes later anyway; see :func:`lbswap.clouds.retry.transient`) is not a failure.
    """
    summary = None
    last = ""
    options = ctx.options
    watcher = ctx.watcher or StatusWatcher(ctx.cloud, poll_initial=options.poll_initial, poll_max=options.poll_max)
    if lb_id == ctx.lb_id:  # the source: never carries the campaign's marker
        reads = watcher.statuses(lb_id, timeout, ctx.check, listed=False)
    else:  # every other load balancer a swap waits on is a clone it built, tagged with its clone-of marker
        reads = watcher.statuses(lb_id, timeout, ctx.check, tag=MARKER_CLONE_OF + ctx.lb_id)
    for summary in reads:
        if summary.provisioning_status == "ACTIVE" or (accept_error and summary.provisioning_status == "ERROR"):
            return summary
        if summary.provisioning_status == "ERROR":
            raise WaitFailed(f"load balancer {lb_id} went to ERROR", lb=ctx.who, step=step)
        if summary.provisioning_status != last:
            last = summary.provisioning_status
            ctx.emit(step, "info", f"{lb_id} is {last}")
    status = summary.provisioning_status if summary else "unknown"
    raise WaitFailed(f"load balancer {lb_id} still {status} after {timeout:.0f} s", lb=ctx.who, step=step)


def refuse_if_serving(ctx: SwapContext, lb_id: str, step: str, ports: Sequence[str] = ()) -> None:
    """I8: never delete a load balancer a floating IP points at. Re-reads the floating IPs on its VIP ports
    (main and additional) right before the delete: on ``ports`` when the caller knows them from a graph it read
    (a load balancer's VIP ports never change while it exists), else with a graph read.

    :raises SwapFailed: a floating IP points at it; names the floating IP and the source and the clone.
    """
    if ports:
        fips = tuple(fip for port in ports for fip in ctx.cloud.list_floating_ips(port_id=port))
    else:
        try:
            fips = ctx.cloud.read_graph(lb_id).floating_ips  # read by read_graph just now, on every VIP port
        except NotFound:
            return
    for fip in fips:
        role = "the source" if lb_id == ctx.lb_id else f"the clone {lb_id}"
        raise SwapFailed(
            f"refusing to delete {role}: floating IP {fip.floating_ip_address} points at it "
            f"(source {ctx.lb_id}, load balancer {lb_id}); nothing was deleted, check where the floating IP "
            "should point and run `lbswap resume` or `lbswap rollback`",
            lb=ctx.who,
            step=step,
        )


def wait_gone(ctx: SwapContext, lb_id: str, step: str, *, timeout: float, ports: Sequence[str] = ()) -> None:
    """Delete a load balancer (cascade) and wait until it is gone; retries while it is immutable. Before each
    delete it re-reads the floating IPs (:func:`refuse_if_serving`; ``ports``: its VIP ports, when known)."""
    for _left in ctx.polls(timeout):
        try:
            summary = ctx.cloud.get_load_balancer(lb_id)
        except NotFound:
            return
        except CloudError as exc:
            if transient(exc):
                continue
            raise
        if summary.provisioning_status.startswith("PENDING"):
            continue
        refuse_if_serving(ctx, lb_id, step, ports)
        try:
            ctx.cloud.delete_load_balancer(lb_id, cascade=True)
        except CloudError as exc:
            if isinstance(exc, Conflict) or transient(exc):
                continue
            raise
    raise WaitFailed(f"load balancer {lb_id} was not deleted within {timeout:.0f} s", lb=ctx.who, step=step)


def delete_clones(ctx: SwapContext, step: str) -> None:
    release_temp_fips(ctx)  # a temporary floating IP on a clone would make the delete refuse (I8)
    for clone in find_clones(ctx):
        wait_gone(ctx, clone.id, step, timeout=ctx.options.delete_timeout)


def temp_fip_tags(ctx: SwapContext) -> list[str]:
    """The tags of the temporary floating IP the verify puts on this swap's clone."""
    return [MARKER_TEMP_FIP, MARKER_CAMPAIGN + ctx.campaign_id, MARKER_CLONE_OF + ctx.lb_id]


def release_temp_fips(ctx: SwapContext) -> list[str]:
    """Release every temporary floating IP of this campaign and source, found by tag; returns their addresses."""
    tags = set(temp_fip_tags(ctx))
    released = []
    for fip in ctx.cloud.list_floating_ips(tag=MARKER_TEMP_FIP):
        if tags <= set(fip.tags):
            ctx.cloud.delete_floating_ip(fip.id)
            released.append(fip.floating_ip_address)
    return released


def drain(ctx: SwapContext, step: str) -> dict[str, Any]:
    """Wait until the source reports no active connection three samples in a row, or the drain deadline.

    The outcome goes into the swap's result as ``drain`` (for the change ticket: whether established connections
    ended by themselves or were cut at the deadline): ``drained``, ``open`` (connections still open at the end;
    None when not sampled), ``seconds`` (how long the drain took), ``deadline_seconds``.
    """
    clock = ctx.cloud.clock
    started = clock.now()

    def ended(drained: bool, open_: int | None) -> dict[str, Any]:
        outcome = {"drained": drained, "open": open_}
        seconds = round(clock.now() - started, 3)
        ctx.record_result("drain", {**outcome, "seconds": seconds, "deadline_seconds": ctx.options.drain_timeout})
        return outcome

    if ctx.options.drain_timeout <= 0:
        return ended(False, None)
    deadline = started + ctx.options.drain_timeout
    zeros, active = 0, -1
    while True:
        ctx.check()
        active = ctx.cloud.get_stats(ctx.lb_id).active_connections
        zeros = zeros + 1 if active == 0 else 0
        if zeros >= 3:
            return ended(True, 0)
        if clock.now() + ctx.options.stats_interval > deadline:
            ctx.emit(step, "info", f"deadline: {active} connection(s) still open will be cut")
            return ended(False, active)
        clock.sleep(ctx.options.stats_interval)
