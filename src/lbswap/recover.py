"""Recovery without a journal: unfinished swaps rebuilt from the cloud's marker tags alone.

Everything lbswap creates carries ``lbswap:clone-of=<source>`` and ``lbswap:campaign=<id>`` (I4), so a clone
standing beside its source is an unfinished fip-swap. Where a floating IP already points at the clone, the
flip had begun: recovery finishes it (moves the rest, drains, retires the source). Where none does, no client
ever saw the clone: recovery deletes it. Temporary floating IPs lbswap tagged are released. Every delete goes
through the same guard as a swap's (I8: never delete a load balancer a floating IP points at).

What the marker tags cannot tell: a recreate interrupted between its delete and its create leaves no load
balancer to find (its snapshot was in the journal); ``lbswap snapshot`` backups cover that case.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from lbswap.clouds.base import Cloud
from lbswap.errors import FloatingIPHijacked, LbswapError, NotFound, PreconditionFailed
from lbswap.model import MARKER_TEMP_FIP, FloatingIP, LoadBalancer
from lbswap.workflow.context import SwapContext, SwapOptions
from lbswap.workflow.fips import Target, compare_and_swap, flip_targets
from lbswap.workflow.waits import drain, release_temp_fips, wait_gone

FINISH = "finish"
ROLL_BACK = "roll back"
RELEASE = "release"


@dataclass(frozen=True)
class Recovery:
    """One thing recovery would do, with the reason an operator reads."""

    action: str  # FINISH | ROLL_BACK | RELEASE
    source_id: str
    source_name: str
    clone_id: str
    campaign: str
    reason: str
    floating_ips: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "source_id": self.source_id,
            "source_name": self.source_name,
            "clone_id": self.clone_id,
            "campaign": self.campaign,
            "floating_ips": list(self.floating_ips),
            "reason": self.reason,
        }


def find(cloud: Cloud, *, campaign: str | None = None) -> list[Recovery]:
    """What is unfinished, read from the cloud alone (changes nothing)."""
    lbs = cloud.list_load_balancers()
    present = {lb.id: lb for lb in lbs}
    found = []
    for lb in lbs:
        source_id = lb.clone_of
        if not source_id or source_id not in present or (campaign and lb.campaign != campaign):
            continue  # a clone whose source is gone is an ordinary load balancer now
        clone = cloud.read_graph(lb.id)
        source = cloud.read_graph(source_id)
        on_clone = _fips_on(cloud, clone)
        name, cid = source.name, lb.campaign or ""
        if on_clone:
            reason = f"{len(on_clone)} floating IP(s) already on the clone: finish the flip, drain, retire the source"
            found.append(Recovery(FINISH, source_id, name, lb.id, cid, reason, tuple(on_clone)))
        else:
            reason = "no floating IP points at the clone (no client saw it): delete the clone"
            found.append(Recovery(ROLL_BACK, source_id, name, lb.id, cid, reason))
    for fip in cloud.list_floating_ips(tag=MARKER_TEMP_FIP):
        found.append(Recovery(RELEASE, "", "", "", "", "temporary floating IP lbswap made", (fip.floating_ip_address,)))
    return found


def _fips_on(cloud: Cloud, lb: LoadBalancer) -> list[str]:
    fips = [f for port in lb.vip_port_ids() for f in cloud.list_floating_ips(port_id=port)]
    return [f.floating_ip_address for f in fips if MARKER_TEMP_FIP not in f.tags]  # a verify's probe address


def carry_out(
    cloud: Cloud,
    recoveries: list[Recovery],
    *,
    options: SwapOptions,
    emit: Callable[[str, str, str, str], None] = lambda lb, step, status, message: None,
) -> list[tuple[Recovery, str | None]]:
    """Do each recovery; returns each with its error (one line) or None."""
    done: list[tuple[Recovery, str | None]] = []
    for item in recoveries:
        try:
            if item.action == RELEASE:
                for fip in cloud.list_floating_ips(tag=MARKER_TEMP_FIP):
                    if fip.floating_ip_address in item.floating_ips:
                        cloud.delete_floating_ip(fip.id)
            else:
                ctx = SwapContext(
                    cloud=cloud,
                    campaign_id=item.campaign,
                    lb_id=item.source_id,
                    lb_name=item.source_name,
                    options=options,
                    emit=functools.partial(emit, item.source_id),
                )
                if item.action == FINISH:
                    _finish(ctx, item)
                else:
                    emit(item.source_id, "recover", "start", f"deleting clone {item.clone_id}")
                    release_temp_fips(ctx)  # else the delete refuses: a floating IP points at the clone
                    wait_gone(ctx, item.clone_id, "recover", timeout=options.delete_timeout)
            emit(item.source_id, "recover", "done", item.action)
            done.append((item, None))
        except LbswapError as exc:
            emit(item.source_id, "recover", "failed", str(exc))
            done.append((item, str(exc)))
    return done


def _finish(ctx: SwapContext, item: Recovery) -> None:
    cloud = ctx.cloud
    try:
        source = cloud.read_graph(item.source_id)
    except NotFound:
        return  # its retire, under way when the journal was lost, has finished
    clone = cloud.read_graph(item.clone_id)
    if clone.provisioning_status != "ACTIVE":
        raise LbswapError(f"the clone {clone.id} is {clone.provisioning_status}: recover again once it is ACTIVE")
    targets = flip_targets(source, clone)
    for fip in source.floating_ips:  # those still on the source: the flip was half done

        def decide(_current: FloatingIP, fip: FloatingIP = fip) -> Target:
            ctx.emit("flip", "info", f"{fip.floating_ip_address} -> clone")
            return targets[fip.id]

        changed = FloatingIPHijacked(
            f"floating IP {fip.floating_ip_address} changed while recovering: left alone; recover again"
        )
        # one attempt on the revision just read: a 412 means someone else moved it since
        compare_and_swap(cloud, fip.id, decide, gave_up=changed, attempts=1, known=fip, retry_on=(PreconditionFailed,))
    drain(ctx, "drain")
    ctx.emit("retire", "start", "")
    wait_gone(ctx, item.source_id, "retire", timeout=ctx.options.delete_timeout)
