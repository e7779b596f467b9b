"""One class per swap step, each with ``execute`` and, where the step has an effect to undo, ``revert``.

Every step is idempotent: run again after a crash it finds its earlier effect (marker tags on the clone,
the floating IP's port and revision) instead of repeating it. Steps pass plain JSON between them, so
taskflow can persist them in the journal and resume. Steps never print: they report through ``ctx.emit``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from taskflow import task

from lbswap import clone as clone_mod
from lbswap.clouds.base import Cloud
from lbswap.clouds.watch import StatusWatcher
from lbswap.errors import (
    CloudError,
    CloudTimeout,
    Conflict,
    FloatingIPHijacked,
    LbswapError,
    NotFound,
    PreconditionFailed,
    SwapFailed,
    WaitFailed,
)
from lbswap.model import (
    MARKER_CAMPAIGN,
    MARKER_CLONE_OF,
    MARKER_TEMP_FIP,
    FloatingIP,
    LBSummary,
    LoadBalancer,
    from_json,
    to_json,
)
from lbswap.rotation import ImageCatalog

LOG = logging.getLogger(__name__)
# NO_MONITOR says nothing about health, so it ranks with OFFLINE ("not known to be up"): Octavia reports either
# for the same member depending on timing (a fresh clone's OFFLINE vs its source's NO_MONITOR would never pass).
HEALTH_RANK = {"ONLINE": 3, "DRAINING": 2, "NO_MONITOR": 1, "DEGRADED": 1, "OFFLINE": 1, "ERROR": 0}


@dataclass(frozen=True)
class SwapOptions:
    drain_timeout: float = 300.0
    keep_source_minutes: float = 0.0
    stats_interval: float = 10.0
    ready_timeout: float = 1800.0
    delete_timeout: float = 900.0
    poll_initial: float = 1.0
    poll_max: float = 15.0
    status_interval: float = 2.0  # one list call per interval serves every status wait of a campaign
    image_tag: str = "amphora"
    image_owner: str | None = None
    force: bool = False  # rebuild amphorae already on the newest image (a CA or heartbeat key changed)
    repair: bool = False  # a source in ERROR may be failed over (repair)
    # verify the clone with traffic before the flip, watch it after (workflow/verify.py)
    verify: bool = True
    verify_path: str = "/"
    verify_host: str | None = None
    verify_udp_payload: str | None = None
    verify_timeout: float = 5.0  # one probe
    verify_settle: float = 10.0  # a new temporary floating IP may take this long to carry traffic
    watch: float = 60.0  # 0: no watch
    watch_max_errors: int = 2
    watch_interval: float = 2.0


class CreationSlots:
    """At most N clones being built at once (``--max-creating``), shared by the swaps of a campaign. A swap
    holds a slot from its create until its clone is ready (or the create is undone)."""

    def __init__(self, limit: int | None, check: Callable[[], None]) -> None:
        self._cond = threading.Condition()
        self._limit = limit
        self._holders: set[str] = set()
        self._check = check

    def limit(self, limit: int | None) -> None:
        with self._cond:
            self._limit = limit
            self._cond.notify_all()

    def take(self, who: str) -> None:
        with self._cond:
            while self._limit and who not in self._holders and len(self._holders) >= self._limit:
                self._check()  # a stop asked for while waiting: leave at once
                self._cond.wait(0.2)
            self._holders.add(who)

    def give_back(self, who: str) -> None:
        with self._cond:
            self._holders.discard(who)
            self._cond.notify_all()


@dataclass
class SwapContext:
    """What every step of one swap shares; rebuilt (not persisted) when a swap resumes."""

    cloud: Cloud
    campaign_id: str
    lb_id: str
    lb_name: str
    options: SwapOptions
    target: clone_mod.TargetChanges = field(default_factory=clone_mod.TargetChanges)
    kubernetes: bool = False
    emit: Callable[[str, str, str], None] = lambda step, status, message: None
    record_flip: Callable[[dict[str, Any]], None] = lambda flip: None
    #: a key of the swap's result (``verify``, ``watch``) and its value, kept in the journal
    record_result: Callable[[str, Any], None] = lambda key, value: None
    #: at every step start and poll: raises StopSwap when the campaign must stop (signal, lease, journal)
    check: Callable[[], None] = lambda: None
    #: the snapshot this swap took, kept in the journal apart from taskflow's storage so that a resume whose
    #: taskflow state was lost re-uses it instead of re-reading a source whose floating IPs have moved
    saved_source: dict[str, Any] | None = None
    save_source: Callable[[dict[str, Any]], None] = lambda source: None
    creating: CreationSlots = field(default_factory=lambda: CreationSlots(None, lambda: None))
    watcher: StatusWatcher | None = None  # the campaign's; without one, each wait polls on its own

    @property
    def who(self) -> str:
        return f"{self.lb_name or '(no name)'} ({self.lb_id})"

    def polls(self, timeout: float) -> Iterator[float]:
        """Yield until ``timeout`` simulated-or-real seconds passed, sleeping with backoff in between."""
        clock = self.cloud.clock
        deadline = clock.now() + timeout
        delay = self.options.poll_initial
        while True:
            self.check()
            yield deadline - clock.now()
            if clock.now() >= deadline:
                return
            clock.sleep(min(delay, max(deadline - clock.now(), 0.0)))
            delay = min(delay * 1.5, self.options.poll_max)


class Step(task.Task):  # type: ignore[misc]
    """A swap step: reports start/done/failed and names the load balancer and the step in its errors."""

    step = "step"

    def __init__(self, ctx: SwapContext, *, provides: str | None = None) -> None:
        super().__init__(name=self.step, provides=provides)
        self.ctx = ctx

    @contextmanager
    def reporting(self, status_done: str = "done") -> Iterator[None]:
        self.ctx.check()
        self.ctx.emit(self.step, "start", "")
        try:
            yield
        except LbswapError as exc:
            exc.lb = exc.lb or self.ctx.who
            exc.step = exc.step or self.step
            self.ctx.emit(self.step, "failed", exc.message)
            raise
        self.ctx.emit(self.step, status_done, "")

    @contextmanager
    def reverting(self) -> Iterator[None]:
        self.ctx.emit(self.step, "reverting", "")
        yield
        self.ctx.emit(self.step, "reverted", "")


# --- helpers shared by steps and by `lbswap rollback` ------------------------------------------------------


def find_clones(ctx: SwapContext) -> list[LBSummary]:
    """The clones this campaign made of this source, found by their marker tags (the cloud is the truth)."""
    return [
        lb
        for lb in ctx.cloud.list_load_balancers(tags=[MARKER_CLONE_OF + ctx.lb_id, MARKER_CAMPAIGN + ctx.campaign_id])
        if lb.clone_of == ctx.lb_id and MARKER_CAMPAIGN + ctx.campaign_id in lb.tags
    ]


def transient(exc: CloudError) -> bool:
    """A read that may succeed when repeated: a timeout or a server-side error."""
    return isinstance(exc, CloudTimeout) or (exc.status_code or 0) >= 500


def wait_status(ctx: SwapContext, lb_id: str, step: str, *, timeout: float, accept_error: bool = False) -> LBSummary:
    """Wait until a load balancer leaves ``PENDING_*``; ERROR fails unless ``accept_error``.

    Served by the campaign's status watcher (or polls with backoff); a transient error of one read is not a failure.
    """
    summary = None
    last = ""
    options = ctx.options
    watcher = ctx.watcher or StatusWatcher(ctx.cloud, poll_initial=options.poll_initial, poll_max=options.poll_max)
    for summary in watcher.statuses(lb_id, timeout, ctx.check):
        if summary.provisioning_status == "ACTIVE" or (accept_error and summary.provisioning_status == "ERROR"):
            return summary
        if summary.provisioning_status == "ERROR":
            raise WaitFailed(f"load balancer {lb_id} went to ERROR", lb=ctx.who, step=step)
        if summary.provisioning_status != last:
            last = summary.provisioning_status
            ctx.emit(step, "info", f"{lb_id} is {last}")
    status = summary.provisioning_status if summary else "unknown"
    raise WaitFailed(f"load balancer {lb_id} still {status} after {timeout:.0f} s", lb=ctx.who, step=step)


def refuse_if_serving(ctx: SwapContext, lb_id: str, step: str) -> None:
    """I8: never delete a load balancer a floating IP points at. Re-reads the floating IPs on its VIP ports
    (main and additional) right before the delete.

    :raises SwapFailed: a floating IP points at it; names the floating IP and the source and the clone.
    """
    try:
        graph = ctx.cloud.read_graph(lb_id)
    except NotFound:
        return
    for fip in graph.floating_ips:  # read by read_graph just now, on every VIP port (the protocol)
        role = "the source" if lb_id == ctx.lb_id else f"the clone {lb_id}"
        raise SwapFailed(
            f"refusing to delete {role}: floating IP {fip.floating_ip_address} points at it "
            f"(source {ctx.lb_id}, load balancer {lb_id}); nothing was deleted, check where the floating IP "
            "should point and run `lbswap resume` or `lbswap rollback`",
            lb=ctx.who,
            step=step,
        )


def wait_gone(ctx: SwapContext, lb_id: str, step: str, *, timeout: float) -> None:
    """Delete a load balancer (cascade) and wait until it is gone; retries while it is immutable. Before each
    delete it re-reads the floating IPs (:func:`refuse_if_serving`)."""
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
        refuse_if_serving(ctx, lb_id, step)
        try:
            ctx.cloud.delete_load_balancer(lb_id, cascade=True)
        except CloudError as exc:
            if isinstance(exc, Conflict) or transient(exc):
                continue
            raise
    raise WaitFailed(f"load balancer {lb_id} was not deleted within {timeout:.0f} s", lb=ctx.who, step=step)


def flip_targets(source: LoadBalancer, clone: LoadBalancer) -> dict[str, tuple[str, str | None]]:
    """Floating IP id -> (clone port, clone fixed address) for every floating IP of the source.

    A floating IP on the main VIP goes to the clone's main VIP; one on an additional VIP goes to the clone's
    additional VIP on the same subnet. Octavia puts additional VIPs on the main VIP port (so the address tells
    them apart); a backend may also give them ports of their own.

    :raises SwapFailed: the clone has no VIP on the subnet of a floating IP's address.
    """
    by_subnet = {v.subnet_id: v for v in clone.additional_vips}
    extra_by_address = {v.ip_address: v for v in source.additional_vips if v.ip_address}
    extra_by_port = {v.port_id: v for v in source.additional_vips if v.port_id and v.port_id != source.vip_port_id}
    targets: dict[str, tuple[str, str | None]] = {}
    for fip in source.floating_ips:
        extra = None
        if fip.fixed_ip_address and fip.fixed_ip_address != source.vip_address:
            extra = extra_by_address.get(fip.fixed_ip_address)
        if extra is None and fip.port_id and fip.port_id != source.vip_port_id:
            extra = extra_by_port.get(fip.port_id)
        if extra is None:
            targets[fip.id] = (clone.vip_port_id or "", clone.vip_address)
            continue
        target = by_subnet.get(extra.subnet_id)
        if target is None:
            raise SwapFailed(
                f"the clone has no VIP on subnet {extra.subnet_id} for floating IP {fip.floating_ip_address}"
            )
        targets[fip.id] = (target.port_id or clone.vip_port_id or "", target.ip_address)
    return targets


def move_back(ctx: SwapContext, source: LoadBalancer, targets: dict[str, tuple[str, str | None]]) -> list[str]:
    """Point every floating IP that lbswap moved to the clone back where the snapshot had it; leave any other
    alone. ``targets`` is :func:`flip_targets` of the source and its clone.

    Returns what was left alone (a floating IP someone else moved), for the operator.
    """
    left_alone = []
    clone_ports = {port for port, _fixed in targets.values()}
    for fip in source.floating_ips:
        for _attempt in range(5):
            try:
                current = ctx.cloud.get_floating_ip(fip.id)
            except NotFound:
                left_alone.append(f"{fip.floating_ip_address} (deleted by someone else)")
                break
            if current.port_id == fip.port_id:
                break
            if current.port_id not in clone_ports:
                left_alone.append(f"{fip.floating_ip_address} (now on port {current.port_id}, not ours)")
                break
            try:
                ctx.cloud.move_floating_ip(
                    fip.id,
                    port_id=fip.port_id or "",
                    fixed_ip_address=fip.fixed_ip_address,
                    if_revision=current.revision_number,
                )
                ctx.record_flip(
                    {
                        "floating_ip_address": fip.floating_ip_address,
                        "from_port": current.port_id,
                        "to_port": fip.port_id,
                        "at": ctx.cloud.clock.now(),
                        "back": True,
                    }
                )
            except (PreconditionFailed, CloudTimeout):
                continue  # re-read: moved by our own earlier attempt, or by someone else
            break
    return left_alone


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


# --- steps ------------------------------------------------------------------------------------------------


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
            others = [
                c
                for c in self.ctx.cloud.list_load_balancers(tags=[MARKER_CLONE_OF + self.ctx.lb_id])
                if c.clone_of == self.ctx.lb_id and c.campaign != self.ctx.campaign_id
            ]
            if others:
                raise SwapFailed(f"campaign {others[0].campaign} already has a clone {others[0].id} of it")


class CreateClone(Step):
    step = "create-clone"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="clone_id")

    def execute(self, source: dict[str, Any]) -> str:
        with self.reporting():
            self.ctx.creating.take(self.ctx.lb_id)  # held until the clone is ready (WaitReady) or undone
            existing = [c for c in find_clones(self.ctx) if c.provisioning_status != "PENDING_DELETE"]
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
        for _attempt in range(5):
            current = ctx.cloud.get_floating_ip(fip.id)
            if current.port_id == to_port:
                return {"floating_ip_address": fip.floating_ip_address, "from_port": fip.port_id, "to_port": to_port}
            if current.port_id != fip.port_id:
                raise FloatingIPHijacked(
                    f"floating IP {fip.floating_ip_address} was moved to port {current.port_id} by someone else: "
                    "stopping without overwriting it"
                )
            try:
                ctx.cloud.move_floating_ip(
                    fip.id, port_id=to_port, fixed_ip_address=to_fixed, if_revision=current.revision_number
                )
            except (PreconditionFailed, CloudTimeout):
                continue  # re-read: on the clone means done, anywhere else means someone else moved it
            flip = {
                "floating_ip_address": fip.floating_ip_address,
                "from_port": fip.port_id,
                "to_port": to_port,
                "at": ctx.cloud.clock.now(),
            }
            ctx.record_flip(flip)
            ctx.emit(self.step, "info", f"{fip.floating_ip_address} -> clone")
            return flip
        raise SwapFailed(f"floating IP {fip.floating_ip_address} kept changing under us; stopping")

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


class Drain(Step):
    """Established flows stay on the source (conntrack): wait until it reports no active connection."""

    step = "drain"

    def execute(self, source: dict[str, Any]) -> dict[str, Any]:
        with self.reporting():
            return drain(self.ctx, self.step)


def drain(ctx: SwapContext, step: str) -> dict[str, Any]:
    """Wait until the source reports no active connection three samples in a row, or the drain deadline."""
    clock = ctx.cloud.clock
    if ctx.options.drain_timeout <= 0:
        return {"drained": False, "open": None}
    deadline = clock.now() + ctx.options.drain_timeout
    zeros, active = 0, -1
    while True:
        ctx.check()
        active = ctx.cloud.get_stats(ctx.lb_id).active_connections
        zeros = zeros + 1 if active == 0 else 0
        if zeros >= 3:
            return {"drained": True, "open": 0}
        if clock.now() + ctx.options.stats_interval > deadline:
            ctx.emit(step, "info", f"deadline: {active} connection(s) still open will be cut")
            return {"drained": False, "open": active}
        clock.sleep(ctx.options.stats_interval)


class Retire(Step):
    """Delete the source (cascade). Forward only: from here on nothing is rolled back."""

    step = "retire"

    def execute(self, source: dict[str, Any], clone_id: str | None = None) -> None:
        with self.reporting():
            ctx = self.ctx
            src = from_json(LoadBalancer, source)
            if clone_id is not None:  # I3: never retire a source a floating IP still reaches
                ports = set(src.vip_port_ids())
                for fip in src.floating_ips:
                    try:
                        current = ctx.cloud.get_floating_ip(fip.id)
                    except NotFound:
                        continue
                    if current.port_id in ports:
                        raise SwapFailed(f"floating IP {fip.floating_ip_address} still points at the source")
            wait_gone(ctx, ctx.lb_id, self.step, timeout=ctx.options.delete_timeout)


class RenameClone(Step):
    """Kubernetes-managed: give the clone the source's name once the source is gone."""

    step = "rename-clone"

    def execute(self, source: dict[str, Any], clone_id: str) -> None:
        with self.reporting():
            ctx = self.ctx
            name = source["name"]
            current = wait_status(ctx, clone_id, self.step, timeout=ctx.options.ready_timeout)
            if current.name != name:
                with suppress(CloudTimeout):
                    ctx.cloud.rename_load_balancer(clone_id, name)
                wait_status(ctx, clone_id, self.step, timeout=ctx.options.ready_timeout)


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
