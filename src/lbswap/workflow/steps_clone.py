"""The steps of the clone phase: snapshot the source, re-check it, create its clone, wait until the clone is
ready (I5: the same graph, no less healthy)."""

from __future__ import annotations

import logging
from typing import Any

from lbswap import clone as clone_mod
from lbswap.errors import CloudTimeout, FloatingIPHijacked, LbswapError, SwapFailed, WaitFailed
from lbswap.model import MARKER_CAMPAIGN, MARKER_CLONE_OF, LoadBalancer, from_json, to_json
from lbswap.workflow.context import Step, SwapContext
from lbswap.workflow.waits import delete_clones, find_clones, wait_status

LOG = logging.getLogger(__name__)
# NO_MONITOR says nothing about health, so it ranks with OFFLINE ("not known to be up"): Octavia reports either
# for the same member depending on timing (a fresh clone's OFFLINE vs its source's NO_MONITOR would never pass).
HEALTH_RANK = {"ONLINE": 3, "DRAINING": 2, "NO_MONITOR": 1, "DEGRADED": 1, "OFFLINE": 1, "ERROR": 0}


class Snapshot(Step):
    step = "snapshot"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="source")

    def execute(self) -> dict[str, Any]:
        with self.reporting():
            if self.ctx.saved_source is not None:  # taken before a crash: the source may have moved on since
                return self.ctx.saved_source
            graph = self.ctx.cloud.read_graph(self.ctx.lb_id)
            result: dict[str, Any] = to_json(graph)
            self.ctx.save_source(result)
            return result


class Preflight(Step):
    """Re-check, at the moment of acting, what the plan checked: state and floating IPs."""

    step = "preflight"

    def execute(self, source: dict[str, Any]) -> None:
        with self.reporting():
            lb = from_json(LoadBalancer, source)
            repairing = self.ctx.options.repair and lb.provisioning_status == "ERROR"
            if lb.provisioning_status != "ACTIVE" and not repairing:
                raise SwapFailed(f"the source is {lb.provisioning_status}, not ACTIVE: nothing was changed")
            ports = set(lb.vip_port_ids())
            for fip in lb.floating_ips:
                if fip.port_id not in ports:
                    raise FloatingIPHijacked(f"floating IP {fip.floating_ip_address} is no longer on the source VIP")
            clones = [
                c
                for c in self.ctx.cloud.list_load_balancers(tags=[MARKER_CLONE_OF + self.ctx.lb_id])
                if c.clone_of == self.ctx.lb_id
            ]
            others = [c for c in clones if c.campaign != self.ctx.campaign_id]
            self.ctx.listed_clones = tuple(c for c in clones if MARKER_CAMPAIGN + self.ctx.campaign_id in c.tags)
            if others:
                raise SwapFailed(f"campaign {others[0].campaign} already has a clone {others[0].id} of it")


class CreateClone(Step):
    step = "create-clone"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="clone_id")

    def execute(self, source: dict[str, Any]) -> str:
        with self.reporting():
            self.ctx.creating.take(self.ctx.lb_id)  # held until the clone is ready (WaitReady) or undone
            # this swap's earlier clone (I6): the preflight's listing when it ran just before in this process and
            # found none (the swap's lease keeps anyone else from making one in between), else a listing of its own
            # (one it found may have been deleted by hand while this swap waited for a creation slot)
            listed, self.ctx.listed_clones = self.ctx.listed_clones, None
            clones = [] if listed == () else find_clones(self.ctx)
            existing = [c for c in clones if c.provisioning_status != "PENDING_DELETE"]
            if existing:
                self.ctx.emit(self.step, "info", f"found clone {existing[0].id} from an earlier attempt")
                return existing[0].id
            lb = from_json(LoadBalancer, source)
            body = clone_mod.build_clone_body(lb, campaign_id=self.ctx.campaign_id, target=self.ctx.target)
            try:
                created = self.ctx.cloud.create_load_balancer(body)
            except CloudTimeout:
                found = find_clones(self.ctx)
                if not found:
                    raise
                created = found[0]
            self.ctx.emit(self.step, "info", f"clone {created.id}")
            return created.id

    def revert(self, source: dict[str, Any], result: Any = None, **kwargs: Any) -> None:
        self.ctx.creating.give_back(self.ctx.lb_id)
        with self.reverting():
            try:
                delete_clones(self.ctx, self.step)
            except LbswapError as exc:  # name what is left behind; the swap ends failed, resume retries
                LOG.error("%s: could not delete its clone, delete it by hand: %s", self.ctx.who, exc)
                raise


class WaitReady(Step):
    """The clone is ACTIVE, its graph equals the source's (I5), and its members are no less healthy."""

    step = "wait-ready"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="clone")

    def execute(self, source: dict[str, Any], clone_id: str) -> dict[str, Any]:
        try:
            return self._ready(source, clone_id)
        finally:
            self.ctx.creating.give_back(self.ctx.lb_id)

    def _ready(self, source: dict[str, Any], clone_id: str) -> dict[str, Any]:
        self.ctx.creating.take(self.ctx.lb_id)  # a resumed swap whose create ran before the crash
        with self.reporting():
            ctx = self.ctx
            wait_status(ctx, clone_id, self.step, timeout=ctx.options.ready_timeout)
            src = from_json(LoadBalancer, source)
            clone = ctx.cloud.read_graph(clone_id)
            want, got = clone_mod.comparable(src, ctx.target), clone_mod.comparable(clone, ctx.target)
            if ctx.kubernetes:
                want.pop("name", None)
                got.pop("name", None)
            if want != got:
                diff = sorted(k for k in want if want.get(k) != got.get(k))
                raise SwapFailed(f"the clone {clone_id} differs from the source in {', '.join(diff)}")
            for _left in ctx.polls(ctx.options.ready_timeout):
                worse = not_ready(ctx.cloud.read_graph(ctx.lb_id), clone)
                if not worse:
                    return to_json(clone)  # type: ignore[no-any-return]
                ctx.emit(self.step, "info", f"holding the flip: {worse}")
                clone = ctx.cloud.read_graph(clone_id)
            raise WaitFailed(f"the clone did not become ready: {worse}")


def not_ready(source: LoadBalancer, clone: LoadBalancer) -> str:
    """What holds the flip back, named (empty when nothing does): the clone's provisioning status, each of its
    amphorae (ALLOCATED and booted), its operating status against the source's, and member by member health."""
    if clone.provisioning_status != "ACTIVE":
        return f"the clone {clone.id} is {clone.provisioning_status}"
    for amphora in clone.amphorae:
        if amphora.status not in ("ALLOCATED", "READY"):
            return f"amphora {amphora.id} ({amphora.role}) of the clone is {amphora.status}"
    if HEALTH_RANK.get(clone.operating_status, 1) < HEALTH_RANK.get(source.operating_status, 1):
        return f"the clone is {clone.operating_status}, the source {source.operating_status}"
    return _less_healthy(source, clone)


def _less_healthy(source: LoadBalancer, clone: LoadBalancer) -> str:
    def health(lb: LoadBalancer) -> dict[tuple[str, str, int], str]:
        return {(pool.name, m.address, m.protocol_port): m.operating_status for pool in lb.pools for m in pool.members}

    names = clone_mod.pool_names(source)
    src = {(names[p.id], m.address, m.protocol_port): m.operating_status for p in source.pools for m in p.members}
    got = health(clone)
    for key, status in src.items():
        if HEALTH_RANK.get(got.get(key, "ERROR"), 0) < HEALTH_RANK.get(status, 0):
            return f"member {key[1]}:{key[2]} is {got.get(key)} on the clone, {status} on the source"
    return ""
