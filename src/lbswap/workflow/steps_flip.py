"""The steps of the flip: move every floating IP to the clone (undone by moving them back), then check that
they stayed there and that the clone is still ACTIVE."""

from __future__ import annotations

import logging
from typing import Any

from lbswap.errors import FloatingIPHijacked, SwapFailed
from lbswap.model import FloatingIP, LoadBalancer, from_json
from lbswap.workflow.context import Step, SwapContext
from lbswap.workflow.fips import Target, compare_and_swap, flip_targets, move_back
from lbswap.workflow.settle import SERVED, wait_back_on_source, wait_served_by_clone

LOG = logging.getLogger(__name__)


class Flip(Step):
    """Move every floating IP from the source VIP to the clone VIP, each in one compare-and-swap PUT."""

    step = "flip"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="flips")

    def execute(self, source: dict[str, Any], clone: dict[str, Any]) -> list[dict[str, Any]]:
        with self.reporting():
            src, dst = from_json(LoadBalancer, source), from_json(LoadBalancer, clone)
            targets = flip_targets(src, dst)
            return [self._flip_one(fip, *targets[fip.id]) for fip in src.floating_ips]

    def _flip_one(self, fip: FloatingIP, to_port: str, to_fixed: str | None) -> dict[str, Any]:
        ctx = self.ctx

        def decide(current: FloatingIP) -> Target | None:
            if current.port_id == to_port:
                return None  # on the clone already (a 412 or a timeout re-read: our own earlier attempt)
            if current.port_id != fip.port_id:
                raise FloatingIPHijacked(
                    f"floating IP {fip.floating_ip_address} was moved to port {current.port_id} by someone else: "
                    "stopping without overwriting it"
                )
            return to_port, to_fixed

        gave_up = SwapFailed(f"floating IP {fip.floating_ip_address} kept changing under us; stopping")
        if compare_and_swap(ctx.cloud, fip.id, decide, gave_up=gave_up) is None:
            return {"floating_ip_address": fip.floating_ip_address, "from_port": fip.port_id, "to_port": to_port}
        flip = {
            "floating_ip_address": fip.floating_ip_address,
            "from_port": fip.port_id,
            "to_port": to_port,
            "at": ctx.cloud.clock.now(),
        }
        ctx.record_flip(flip)
        ctx.emit(self.step, "info", f"{fip.floating_ip_address} -> clone")
        return flip

    def revert(
        self,
        source: dict[str, Any],
        clone: dict[str, Any],
        result: Any = None,
        verify: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self.reverting():
            src, dst = from_json(LoadBalancer, source), from_json(LoadBalancer, clone)
            moved: dict[str, float] = {}
            left = move_back(self.ctx, src, flip_targets(src, dst), moved)
            for what in left:
                LOG.warning("%s: left floating IP %s alone", self.ctx.who, what)
            if left:
                self.ctx.record_result("left_alone", left)
            settle_back(self.ctx, self.step, src, dst.id, moved, (verify or {}).get("answering"))


def settle_back(
    ctx: SwapContext, step: str, source: LoadBalancer, clone_id: str, moved: dict[str, float], answering: Any
) -> None:
    """Before the clone is deleted, wait (bounded) until the floating IPs just moved back are served by the source
    again: the data plane follows the API late, and a clone deleted before it did would reset new connections."""
    settles = wait_back_on_source(ctx, source, clone_id, moved, answering)
    if settles:
        ctx.record_result("settle_back", [s.to_json() for s in settles])
    for settle in settles:
        if settle.outcome == SERVED and settle.api_answered_at is not None:
            delay = (settle.clone_served_at or 0.0) - settle.api_answered_at
            ctx.emit(step, "info", f"{settle.floating_ip_address}: the source served {delay:.2f} s after the API")
        else:
            ctx.emit(step, "info", f"{settle.floating_ip_address} back: {settle.outcome}: {settle.reason or ''}")


class PostFlipCheck(Step):
    """Every floating IP is still on the clone and the clone still ACTIVE; then, where the backend can tell who
    served a probe, wait (at most ``settle_timeout``) until new connections through each floating IP reach the
    clone: the data plane follows the API late (settle.py). The drain starts only after that: before it, the
    source still takes new connections. A floating IP whose probes still reach the source when the wait ends
    fails the swap, which taskflow reverts (every floating IP flips back): retiring that source would drop them.
    """

    step = "post-flip-check"

    def execute(
        self,
        source: dict[str, Any],
        clone: dict[str, Any],
        flips: list[dict[str, Any]] | None = None,
        verify: dict[str, Any] | None = None,
    ) -> None:
        with self.reporting():
            src, dst = from_json(LoadBalancer, source), from_json(LoadBalancer, clone)
            targets = flip_targets(src, dst)
            for fip in src.floating_ips:
                current = self.ctx.cloud.get_floating_ip(fip.id)
                if current.port_id != targets[fip.id][0]:
                    raise FloatingIPHijacked(
                        f"floating IP {fip.floating_ip_address} is on port {current.port_id}, not the clone's"
                    )
            status = self.ctx.cloud.get_load_balancer(dst.id).provisioning_status
            if status != "ACTIVE":
                raise SwapFailed(f"the clone went {status} after the flip")
            self._settle(src, dst.id, flips or [], verify or {})

    def _settle(self, src: LoadBalancer, clone_id: str, flips: list[dict[str, Any]], verify: dict[str, Any]) -> None:
        ctx = self.ctx
        # when the API answered each flip; None when this attempt found it moved already (before a crash)
        answered = {fip.floating_ip_address: None for fip in src.floating_ips}
        answered.update({f["floating_ip_address"]: f.get("at") for f in flips if not f.get("back")})
        settles = wait_served_by_clone(ctx, src, clone_id, answered, answering=verify.get("answering"))
        ctx.record_result("settle", [s.to_json() for s in settles])
        for settle in settles:
            if settle.outcome == SERVED and settle.api_answered_at is not None:
                delay = (settle.clone_served_at or 0.0) - settle.api_answered_at
                ctx.emit(
                    self.step, "info", f"{settle.floating_ip_address}: the clone served {delay:.2f} s after the API"
                )
            elif settle.outcome != SERVED:
                ctx.emit(self.step, "info", f"{settle.floating_ip_address}: {settle.outcome}: {settle.reason or ''}")
        behind = [s for s in settles if s.data_plane_behind]
        if behind:
            raise SwapFailed(
                f"floating IP {behind[0].floating_ip_address}: the data plane still sends new connections to the "
                f"source {ctx.options.settle_timeout:g} s after the API moved it ({behind[0].reason}); flipping back "
                "rather than retire a source that still takes them (a slower cloud: raise --settle-timeout)"
            )
