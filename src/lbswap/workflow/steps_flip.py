"""The steps of the flip: move every floating IP to the clone (undone by moving them back), then check that
they stayed there and that the clone is still ACTIVE."""

from __future__ import annotations

import logging
from typing import Any

from lbswap.errors import FloatingIPHijacked, SwapFailed
from lbswap.model import FloatingIP, LoadBalancer, from_json
from lbswap.workflow.context import Step, SwapContext
from lbswap.workflow.fips import Target, compare_and_swap, flip_targets, move_back

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

    def revert(self, source: dict[str, Any], clone: dict[str, Any], result: Any = None, **kwargs: Any) -> None:
        with self.reverting():
            src, dst = from_json(LoadBalancer, source), from_json(LoadBalancer, clone)
            left = move_back(self.ctx, src, flip_targets(src, dst))
            for what in left:
                LOG.warning("%s: left floating IP %s alone", self.ctx.who, what)


class PostFlipCheck(Step):
    step = "post-flip-check"

    def execute(self, source: dict[str, Any], clone: dict[str, Any]) -> None:
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
