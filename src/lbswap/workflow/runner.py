"""Campaigns: run swaps (in parallel), resume them after a crash, roll them back, finalize kept sources.

Each swap is two taskflow flows persisted in the journal (see flows.py). The runner owns the per-swap state
an operator reads (pending, running, kept, done, rolled_back, failed) and reports progress through
``on_event``; it never prints.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lbswap.clone import KUBERNETES_ANNOTATION, TargetChanges
from lbswap.clouds import open_cloud
from lbswap.clouds.base import Cloud
from lbswap.clouds.watch import StatusWatcher
from lbswap.errors import LbswapError, NotFound, StopSwap, WrongCloud
from lbswap.journal import CampaignRow, Journal, Lease, SwapRow, storage_cause
from lbswap.model import MARKER_CAMPAIGN, LoadBalancer, from_json
from lbswap.state import TERMINAL, UNSUCCESSFUL, SwapState, allowed
from lbswap.workflow import flows
from lbswap.workflow.guard import Guard, GuardedCloud, StopRequest
from lbswap.workflow.tasks import (
    CreationSlots,
    SwapContext,
    SwapOptions,
    delete_clones,
    find_clones,
    flip_targets,
    move_back,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from taskflow import engines, states
    from taskflow import exceptions as tf_exceptions
    from taskflow.persistence import models

__all__ = [
    "CampaignResult",
    "Event",
    "FleetPolicy",
    "StopRequest",
    "SwapOptions",
    "SwapResult",
    "finalize",
    "resume",
    "rollback",
    "run_campaign",
]

LOG = logging.getLogger(__name__)
FORWARD_ATTEMPTS = 3


@dataclass(frozen=True)
class FleetPolicy:
    """How a campaign walks a fleet.

    ``canary`` swaps run one at a time before any runs in parallel; ``max_failures`` is the circuit breaker:
    once that many swaps ended failed or rolled back, no further swap starts (those end ``skipped``,
    untouched). ``None`` never opens it.
    """

    parallel: int = 1
    canary: int = 0
    max_failures: int | None = None
    rate: float | None = None  # swaps started per minute (Octavia's guide: fail over a fleet at a slow pace)
    max_creating: int | None = None  # clones being built at once (each is a VIP port and amphorae)


@dataclass(frozen=True)
class Event:
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


# --- one swap --------------------------------------------------------------------------------------------


class _Swap:
    """Drives one swap through its phases, keeping its journal row current."""

    def __init__(self, runner: _Runner, row: SwapRow) -> None:
        self.runner = runner
        self.row = row
        plan = row.plan
        self.strategy: str = plan["strategy"]
        self._lock = threading.RLock()
        self._book: Any = None
        self.ctx = SwapContext(
            cloud=runner.cloud,
            campaign_id=row.campaign_id,
            lb_id=row.lb_id,
            lb_name=plan["lb_name"],
            options=runner.options,
            target=TargetChanges(**plan["target"]),
            kubernetes=bool(plan.get("kubernetes")),
            emit=self.emit,
            record_flip=self.record_flip,
            record_result=self.record_result,
            check=runner.guard.check,
            saved_source=row.private.get("source"),
            save_source=self.save_source,
            creating=runner.creating,
            watcher=runner.watcher,
        )

    # callbacks from steps
    def emit(self, step: str, status: str, message: str) -> None:
        now = self.runner.cloud.clock.now()
        with self._lock:
            timing = self.row.result["steps"].setdefault(step, {"started": None, "ended": None, "seconds": None})
            if status == "start":
                timing.update(started=now, ended=None, seconds=None)
            elif status in ("done", "failed", "reverted"):
                timing["ended"] = now
                if timing["started"] is not None:
                    timing["seconds"] = round(now - timing["started"], 3)
                self.save()
        self.runner.emit(Event(self.row.campaign_id, self.row.lb_id, self.ctx.lb_name, step, status, now, message))

    def record_flip(self, flip: dict[str, Any]) -> None:
        with self._lock:
            self.row.result["flips"].append(flip)
            times = [f["at"] for f in self.row.result["flips"] if not f.get("back") and f.get("at") is not None]
            self.row.result["flip_window_seconds"] = round(max(times) - min(times), 3) if times else None
            self.save()

    def record_result(self, key: str, value: Any) -> None:
        with self._lock:
            self.row.result[key] = value
            self.save()

    def save_source(self, source: dict[str, Any]) -> None:
        with self._lock:
            self.row.private["source"] = source
            self.ctx.saved_source = source
            self.save()

    def save(self) -> None:
        self.runner.journal.save_swap(self.row, lease=self.runner.guard.lease)

    def set(self, state: SwapState, *, phase: str | None = None, error: str | None = None) -> None:
        with self._lock:
            if not allowed(self.row.state, state):
                LOG.warning("%s: unexpected state change %s -> %s", self.ctx.who, self.row.state, state)
            self.row.state = state
            if phase:
                self.row.phase = phase
            if error is not None:
                self.row.result["error"] = error
            self.row.result["state"] = state
            self.save()
        self.runner.emit(
            Event(self.row.campaign_id, self.row.lb_id, self.ctx.lb_name, "swap", state, time.time(), error or "")
        )

    # taskflow
    def book(self) -> Any:
        """This swap's own taskflow logbook (one per swap, so parallel swaps never write the same book)."""
        if self._book is None:
            connection = self.runner.journal.backend.get_connection()
            book_uuid = self.row.flows.get("book")
            if book_uuid:
                self._book = connection.get_logbook(book_uuid)
            else:
                self._book = models.LogBook(f"{self.row.campaign_id}:{self.row.lb_id}")
                connection.save_logbook(self._book)
                with self._lock:
                    self.row.flows["book"] = self._book.uuid
                    self.save()
        return self._book

    def _engine(self, phase: str, store: dict[str, Any] | None) -> Any:
        """The phase's engine over its flow detail in the journal. When taskflow's own records of it are
        unusable (a crash between two of its writes), the phase starts over on a new flow detail: every step
        finds its earlier effect in the cloud, and the snapshot comes from lbswap's own row."""
        try:
            return self._load_engine(phase, store, fresh=False)
        except StopSwap:
            raise
        except Exception as exc:  # taskflow's storage is inconsistent: rebuild from the cloud's truth
            stop = storage_failure(self.runner.journal, exc)
            if stop is not None:
                raise stop from None
            LOG.warning("%s: taskflow state of phase %s unusable (%s); starting it over", self.ctx.who, phase, exc)
            self.emit(phase, "info", "journal state of this phase was incomplete: re-checking from the cloud")
            return self._load_engine(phase, store, fresh=True)

    def _load_engine(self, phase: str, store: dict[str, Any] | None, *, fresh: bool) -> Any:
        journal = self.runner.journal
        book = self.book()
        fd_uuid = self.row.flows.get(phase)
        detail = book.find(fd_uuid) if fd_uuid and not fresh else None
        if detail is None:
            detail = models.FlowDetail(f"{self.row.lb_id}:{phase}-{len(self.row.flows)}", uuid=str(uuid.uuid4()))
            book.add(detail)
            journal.backend.get_connection().save_logbook(book)
            with self._lock:
                if fresh and fd_uuid:
                    self.row.flows[f"{phase}-abandoned-{len(self.row.flows)}"] = fd_uuid
                self.row.flows[phase] = detail.uuid
                self.save()
        flow = flows.build(self.strategy, phase, self.ctx)
        engine = engines.load(flow, flow_detail=detail, book=book, backend=journal.backend, store=store)
        engine.compile()
        engine.prepare()
        engine.validate()
        return engine

    def _run_phase(self, phase: str, store: dict[str, Any] | None) -> tuple[Any, BaseException | None]:
        engine = self._engine(phase, store)
        try:
            engine.run()
        except Exception as exc:  # taskflow re-raises the step's failure after reverting
            error = _unwrap(exc)
            if not isinstance(error, LbswapError) and engine.storage.get_flow_state() not in _ENDED:
                raise  # not a step's failure: taskflow itself broke; the row stays as it was for resume
            return engine, error
        return engine, None

    def drive(self, *, finalize: bool = False) -> None:
        try:
            self._drive(finalize=finalize)
        except StopSwap as exc:  # signal, lost lease, lost or full journal: stop every swap, revert nothing
            self.runner.guard.stop.set(exc.message, exc.exit_code)
        except Exception as exc:  # a bug must not take down the other swaps; resume retries this one
            stop = storage_failure(self.runner.journal, exc)
            if stop is not None:  # the journal cannot take writes (disk full, read-only): stop, never revert
                self.runner.guard.stop.set(stop.message, stop.exit_code)
                return
            LOG.exception("%s: unexpected error", self.ctx.who)
            try:
                self.set(SwapState.FAILED, error=f"{self.ctx.who}: {_message(exc)}")
            except StopSwap as stopped:
                self.runner.guard.stop.set(stopped.message, stopped.exit_code)

    def _drive(self, *, finalize: bool) -> None:
        if self.row.state in (SwapState.DONE, SwapState.ROLLED_BACK):
            return
        if self.row.phase == "main":
            self.set(SwapState.RUNNING)
            engine, error = self._run_phase("main", None)
            if error is not None:
                clean = engine.storage.get_flow_state() == states.REVERTED
                self.set(SwapState.ROLLED_BACK if clean else SwapState.FAILED, phase="end", error=_message(error))
                return
            forward = {"source": engine.storage.fetch(flows.SOURCE)}
            if self.strategy == "fip-swap":
                forward["clone_id"] = engine.storage.fetch(flows.CLONE_ID)
                self.row.result["clone_id"] = forward["clone_id"]
            with self._lock:
                self.row.private["forward"] = forward
                self.row.phase = "forward"
                self.save()
        if self.row.state == SwapState.KEPT and not finalize:
            return
        keep = self.runner.options.keep_source_minutes
        if self.strategy == "fip-swap" and keep > 0 and not finalize and self.row.state != SwapState.KEPT:
            with self._lock:
                self.row.result["keep_until"] = self.runner.cloud.clock.now() + keep * 60
            self.set(SwapState.KEPT)
            return
        self._forward()

    def _forward(self) -> None:
        self.set(SwapState.RUNNING)
        error: BaseException | None = None
        for attempt in range(FORWARD_ATTEMPTS):
            if attempt:  # a failed forward flow is not resumed: the next attempt starts its steps afresh
                with self._lock:
                    self.row.flows[f"forward-failed-{attempt}"] = self.row.flows.pop("forward", "")
            engine, error = self._run_phase("forward", dict(self._forward_data()))
            if error is None:
                if self.strategy == "recreate":
                    self.row.result["clone_id"] = engine.storage.fetch(flows.RECREATED_ID)
                if self.row.plan.get("kubernetes") and self.row.result.get("clone_id"):
                    self.row.result["kubernetes_annotation"] = f"{KUBERNETES_ANNOTATION}={self.row.result['clone_id']}"
                self.row.result["error"] = None
                self.set(SwapState.DONE, phase="end")
                return
        why = _message(error) + " (forward only: `lbswap resume` retries)" if error else None
        self.set(SwapState.FAILED, error=why)

    # rollback outside taskflow: the same compensations as the steps' reverts
    def rollback(self) -> None:
        row = self.row
        if row.state == SwapState.ROLLED_BACK:
            return
        if row.state == SwapState.DONE or (row.phase != "main" and self.strategy != "fip-swap"):
            raise LbswapError(
                f"{self.strategy} of {self.ctx.who} is past its point of no return: nothing to roll back to",
                lb=self.ctx.who,
            )
        source = self._source()
        if source is None:
            self.set(SwapState.ROLLED_BACK, phase="end", error="rolled back before anything changed")
            return
        try:
            status = self.runner.cloud.get_load_balancer(row.lb_id).provisioning_status
        except NotFound:
            status = "DELETED"
        if status in ("DELETED", "PENDING_DELETE"):  # moving a floating IP back onto it would strand it
            raise LbswapError(
                f"the source is {'already retired' if status == 'DELETED' else 'being retired (PENDING_DELETE)'}: "
                "nothing to roll back to; `lbswap resume` finishes the swap",
                lb=self.ctx.who,
            )
        self.emit("rollback", "start", "")
        clones = find_clones(self.ctx)
        if clones:
            clone = self.runner.cloud.read_graph(clones[0].id)
            left = move_back(self.ctx, source, flip_targets(source, clone))
            if left:
                self.row.result["error"] = "left alone: " + "; ".join(left)
        delete_clones(self.ctx, "rollback")
        self.emit("rollback", "done", "")
        self.set(
            SwapState.ROLLED_BACK, phase="end", error=self.row.result.get("error") or "rolled back by the operator"
        )

    def _forward_data(self) -> dict[str, Any]:
        # journals of schema 1 kept it inside the result
        data: dict[str, Any] = self.row.private.get("forward") or self.row.result.get("_forward") or {}
        return data

    def _source(self) -> LoadBalancer | None:
        source = self._forward_data().get("source") or self.row.private.get("source")
        if source:
            return from_json(LoadBalancer, source)
        fd_uuid = self.row.flows.get("main")
        if not fd_uuid:
            return None
        detail = self.book().find(fd_uuid)
        for atom in detail or ():
            if atom.name == flows.SNAPSHOT_STEP and atom.results:
                return from_json(LoadBalancer, atom.results)
        return None

    def result(self) -> SwapResult:
        data = {k: v for k, v in self.row.result.items() if not k.startswith("_")}
        return SwapResult(**data)


def storage_failure(journal: Journal, exc: BaseException) -> StopSwap | None:
    """A journal write that failed for want of storage: a reason to stop (resume once fixed), never a swap's
    failure and never corruption."""
    cause = storage_cause(exc)
    if cause is None:
        return None
    return StopSwap(
        f"journal {journal.path}: a write failed ({cause}): stopped; free space or fix the disk, then `lbswap resume`"
    )


_ENDED = (states.REVERTED, states.FAILURE, states.SUCCESS, states.REVERT_FAILURE)


def _unwrap(exc: BaseException) -> BaseException:
    if isinstance(exc, tf_exceptions.WrappedFailure):
        for failure in exc:
            if failure.exception is not None:
                return failure.exception  # type: ignore[no-any-return]
    return exc


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LbswapError) else f"{type(exc).__name__}: {exc}"


# --- a campaign ------------------------------------------------------------------------------------------


class _Runner:
    """One campaign driven by this process: its guarded cloud (I9 fencing), options and event sink."""

    def __init__(
        self,
        journal: Journal,
        campaign_id: str,
        cloud: Cloud,
        options: SwapOptions,
        on_event: EventSink | None,
        guard: Guard,
    ) -> None:
        self.journal = journal
        self.campaign_id = campaign_id
        self.guard = guard
        self.cloud: Cloud = GuardedCloud(cloud, guard)
        self.options = options
        self.on_event = on_event
        self._emit_lock = threading.Lock()
        self.creating = CreationSlots(None, guard.check)
        self.watcher = StatusWatcher(  # one list call per interval serves every status wait of the campaign
            self.cloud,
            tags=[MARKER_CAMPAIGN + campaign_id],
            interval=options.status_interval,
            poll_initial=options.poll_initial,
            poll_max=options.poll_max,
        )
        self._pace_lock = threading.Lock()
        self._last_start: float | None = None

    def pace(self, rate: float | None) -> None:
        """Wait (on the cloud's clock, interruptibly) until the next swap may start at ``rate`` per minute."""
        if not rate:
            return
        with self._pace_lock:
            clock = self.cloud.clock
            if self._last_start is not None:
                wait = self._last_start + 60.0 / rate - clock.now()
                if wait > 0:
                    clock.sleep(wait)
            self._last_start = clock.now()

    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            with self._emit_lock:
                self.on_event(event)

    def swaps(self, lb_id: str | None = None) -> list[_Swap]:
        rows = self.journal.swaps(self.campaign_id)
        return [_Swap(self, r) for r in rows if lb_id is None or r.lb_id == lb_id]

    def drive(self, swaps: Sequence[_Swap], policy: FleetPolicy, *, finalize: bool = False) -> None:
        """Canary swaps one by one, then the rest ``policy.parallel`` at a time, until the breaker opens.

        :raises StopSwap: a stop was asked for (signal, lost lease, lost or full journal); swaps in flight
            stopped at their next step boundary and those not started stay pending, for ``lbswap resume``.
        """
        rows = self.journal.swaps(self.campaign_id)
        failures = sum(1 for r in rows if r.state in UNSUCCESSFUL)
        opened = ""  # why the breaker is open; empty while closed
        lock = threading.Lock()
        stop = self.guard.stop
        self.creating.limit(policy.max_creating)

        def one(swap: _Swap) -> None:
            nonlocal failures, opened
            if stop.is_set():
                return
            with lock:
                reason = opened
            if reason:
                try:
                    swap.set(SwapState.SKIPPED, phase="end", error=f"not started: {reason}; nothing was changed on it")
                except StopSwap as exc:
                    stop.set(exc.message, exc.exit_code)
                return
            if swap.row.state == SwapState.PENDING:
                try:
                    self.pace(policy.rate)
                except StopSwap as exc:
                    stop.set(exc.message, exc.exit_code)
                    return
            swap.drive(finalize=finalize)
            if swap.row.state in UNSUCCESSFUL:
                with lock:
                    failures += 1
                    limit = policy.max_failures
                    if limit is not None and failures >= limit and not opened:
                        opened = (
                            f"the circuit breaker opened after {failures} failed or rolled-back swap(s) "
                            f"(--max-failures {limit})"
                        )

        canary, rest = list(swaps[: policy.canary]), list(swaps[policy.canary :])
        for swap in canary:
            one(swap)
            if swap.row.state in UNSUCCESSFUL and not opened:
                opened = f"the canary {swap.ctx.who} ended {swap.row.state}"
        if policy.parallel <= 1 or len(rest) <= 1:
            for swap in rest:
                one(swap)
        else:
            with ThreadPoolExecutor(max_workers=policy.parallel, thread_name_prefix="swap") as pool:
                list(pool.map(one, rest))
        if stop.is_set():
            raise stop.error()


def _result(journal: Journal, campaign_id: str) -> CampaignResult:
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


def _options(campaign_options: dict[str, Any]) -> SwapOptions:
    names = {f.name for f in dataclasses.fields(SwapOptions)}
    return SwapOptions(**{k: v for k, v in campaign_options.items() if k in names})


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
    runnable = [p for p in plans if p.strategy and not p.blocking]
    swaps = []
    for plan in runnable:
        plan_json = {
            "lb_id": plan.lb_id,
            "lb_name": plan.lb_name,
            "strategy": plan.strategy,
            "target": dataclasses.asdict(plan.target),
            "kubernetes": plan.kubernetes,
            "downtime": plan.downtime,
        }
        result = SwapResult(
            plan.lb_id, plan.lb_name, plan.strategy, SwapState.PENDING, downtime=plan.downtime
        ).to_json()
        swaps.append((plan.lb_id, plan_json, result))
    policy = policy or FleetPolicy(parallel=parallel)
    stored = {**dataclasses.asdict(options), "fleet": dataclasses.asdict(policy)}
    lease = journal.create_campaign(
        campaign_id, backend=cloud.spec(), options=stored, cloud=cloud.identity(), swaps=swaps
    )
    guard = Guard(journal, lease, stop)
    try:
        runner = _Runner(journal, campaign_id, cloud, options, on_event, guard)
        runner.drive(runner.swaps(), policy)
    finally:
        guard.close()
    return _result(journal, campaign_id)


def _drivers(
    journal: Journal,
    campaign_ids: Sequence[str],
    cloud: Cloud | None,
    on_event: EventSink | None,
    stop: StopRequest | None,
) -> list[_Runner]:
    """A runner per campaign, each with its lease taken; all or none (a held lease releases the others).

    :raises WrongCloud: a campaign belongs to another cloud than ``cloud``.
    :raises LeaseHeld: another live process drives one of them.
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
        for cid in campaign_ids:
            taken.append(journal.take_lease(cid))
    except BaseException:
        for lease in taken:
            journal.release_lease(lease)
        for c in opened:
            c.close()
        raise
    return [
        _Runner(journal, campaign.id, here, _options(campaign.options), on_event, Guard(journal, lease, stop))
        for (campaign, here), lease in zip(clouds, taken, strict=True)
    ]


def _close(runners: Sequence[_Runner]) -> None:
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
    return [_result(journal, cid) for cid in ids if campaign_id or cid in todo_ids]


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
                with swap._lock:
                    swap.row.result["error"] = str(exc)
                    swap.save()
            if runner.guard.stop.is_set():
                raise runner.guard.stop.error()
    finally:
        _close([runner])
    return _result(journal, campaign_id)


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
    return _result(journal, campaign_id)


def status(journal: Journal, campaign_id: str | None = None) -> list[CampaignResult]:
    ids = [campaign_id] if campaign_id else [c.id for c in journal.campaigns()]
    return [_result(journal, cid) for cid in ids]
