"""The strategies without a clone beside the source: fail its amphorae over in place, or recreate it from the
snapshot after the retire."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from lbswap import clone as clone_mod
from lbswap.errors import CloudError, CloudTimeout, Conflict, NotFound, SwapFailed, WaitFailed
from lbswap.model import LoadBalancer, from_json
from lbswap.rotation import ImageCatalog
from lbswap.workflow.context import Step, SwapContext
from lbswap.workflow.waits import find_clones, wait_gone, wait_status


class FailoverAmphorae(Step):
    """Octavia's failover: SINGLE as one load balancer failover; ACTIVE_STANDBY amphora by amphora, standby
    first. Only amphorae of the snapshot are rebuilt (a failover gives the new one a new id), and without
    ``--force`` only those not on the newest image: what makes a re-run idempotent. A load balancer in ERROR
    (``--repair``, or left so by an earlier attempt) is failed over whole, as Octavia's guide advises."""

    step = "failover"

    def execute(self, source: dict[str, Any]) -> dict[str, Any]:
        with self.reporting():
            ctx = self.ctx
            catalog = ImageCatalog(ctx.cloud, ctx.options.image_tag, ctx.options.image_owner)
            image = catalog.newest(source.get("flavor_id"))
            newest = image.id if image else None
            original = {a["id"] for a in source.get("amphorae", ())}
            topology = source.get("topology", "SINGLE")
            roles = ["BACKUP", "MASTER"] if topology == "ACTIVE_STANDBY" else ["STANDALONE"]
            done = []
            current = wait_status(ctx, ctx.lb_id, self.step, timeout=ctx.options.ready_timeout, accept_error=True)
            if current.provisioning_status == "ERROR":
                self._failover(lambda: ctx.cloud.failover_load_balancer(ctx.lb_id), "the load balancer (repair)")
                return {"image": newest, "rebuilt": ["ALL"]}
            for role in roles:
                wait_status(ctx, ctx.lb_id, self.step, timeout=ctx.options.ready_timeout, accept_error=True)
                amphora = next((a for a in ctx.cloud.list_amphorae(ctx.lb_id) if a.role == role), None)
                if amphora is None or (original and amphora.id not in original):
                    continue  # rebuilt already (by an earlier attempt of this swap)
                if amphora.image_id == newest and not ctx.options.force:
                    continue
                if role == "STANDALONE":
                    self._failover(lambda: ctx.cloud.failover_load_balancer(ctx.lb_id), f"amphora {amphora.id}")
                else:
                    self._failover(functools.partial(ctx.cloud.failover_amphora, amphora.id), f"{role} {amphora.id}")
                done.append(role)
            wait_status(ctx, ctx.lb_id, self.step, timeout=ctx.options.ready_timeout)
            return {"image": newest, "rebuilt": done}

    def _failover(self, call: Callable[[], None], what: str) -> None:
        ctx = self.ctx
        ctx.emit(self.step, "info", f"failing over {what}")
        with suppress(CloudTimeout):
            call()
        wait_status(ctx, ctx.lb_id, self.step, timeout=ctx.options.ready_timeout)


class Recreate(Step):
    """Create the load balancer again from the snapshot, on the same VIP address (after the retire)."""

    step = "recreate"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="recreated_id")

    def execute(self, source: dict[str, Any]) -> str:
        try:
            return self._recreate(source)
        finally:
            self.ctx.creating.give_back(self.ctx.lb_id)

    def _recreate(self, source: dict[str, Any]) -> str:
        with self.reporting():
            ctx = self.ctx
            lb = from_json(LoadBalancer, source)
            for _attempt in range(3):
                found = [c for c in find_clones(ctx) if c.provisioning_status != "PENDING_DELETE"]
                if found and found[0].provisioning_status == "ERROR":
                    wait_gone(ctx, found[0].id, self.step, timeout=ctx.options.delete_timeout)
                    continue
                if found:
                    lb_id = found[0].id
                else:
                    ctx.creating.take(ctx.lb_id)
                    body = clone_mod.build_clone_body(
                        lb, campaign_id=ctx.campaign_id, target=ctx.target, name=lb.name, vip_address=lb.vip_address
                    )
                    try:
                        lb_id = ctx.cloud.create_load_balancer(body).id
                    except CloudTimeout:
                        continue
                    except CloudError as exc:
                        if isinstance(exc, Conflict | NotFound):
                            raise
                        ctx.emit(self.step, "info", f"create refused, retrying: {exc.message}")
                        continue
                try:
                    wait_status(ctx, lb_id, self.step, timeout=ctx.options.ready_timeout)
                except WaitFailed:
                    continue
                return lb_id
            raise SwapFailed(
                "could not create the load balancer again after 3 attempts; "
                "`lbswap resume` retries from the snapshot in the journal"
            )
