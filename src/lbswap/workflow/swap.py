"""One swap driven through its two phases (main, then forward), its journal row kept current; its rollback
outside taskflow with the same compensations as the steps' reverts.

Each phase is a taskflow flow persisted in the journal (see flows.py); the driver owns the per-swap state an
operator reads (pending, running, kept, done, rolled_back, failed) and reports progress as events.
"""

from __future__ import annotations

import logging
import threading
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from lbswap.clone import KUBERNETES_ANNOTATION, TargetChanges
from lbswap.errors import LbswapError, NotFound, StopSwap
from lbswap.journal import Journal, SwapRow, storage_cause
from lbswap.model import LoadBalancer, from_json
from lbswap.state import SwapState, allowed
from lbswap.workflow import flows
from lbswap.workflow.context import SwapContext
from lbswap.workflow.fips import flip_targets, move_back
from lbswap.workflow.results import Event
from lbswap.workflow.steps_flip import settle_back
from lbswap.workflow.waits import delete_clones, find_clones

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from taskflow import exceptions as tf_exceptions
    from taskflow import states, storage
    from taskflow.engines.action_engine.engine import SerialActionEngine
    from taskflow.persistence import models
    from taskflow.utils import misc

if TYPE_CHECKING:
    from lbswap.workflow.fleet import CampaignDriver

LOG = logging.getLogger(__name__)
FORWARD_ATTEMPTS = 3


class SwapDriver:
    """Drives one swap through its phases, keeping its journal row current."""

    def __init__(self, runner: CampaignDriver, row: SwapRow) -> None:
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

    def _now(self) -> float:
        """The one clock of this swap's events and step timings: the cloud's, which the runner injected."""
        return self.runner.cloud.clock.now()

    # callbacks from steps
    def emit(self, step: str, status: str, message: str) -> None:
        now = self._now()
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
            Event(self.row.campaign_id, self.row.lb_id, self.ctx.lb_name, "swap", state, self._now(), error or "")
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
        engine = _Engine(flow, detail, journal.backend, {})
        if store:
            engine.storage.inject(store)
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
            moved: dict[str, float] = {}
            left = move_back(self.ctx, source, flip_targets(source, clone), moved)
            if left:
                self.row.result["error"] = "left alone: " + "; ".join(left)
                self.row.result["left_alone"] = left
            verify = self.row.result.get("verify")
            answering = verify.get("answering") if isinstance(verify, dict) else None
            settle_back(self.ctx, "rollback", source, clone.id, moved, answering)
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


class _Storage(storage.Storage):  # type: ignore[misc]
    """taskflow's storage of a phase, without the progress marks its engine sets around every step (0.0 when it
    starts, 1.0 when it ends or is reverted): each was a journal commit of its own (two of a step's four), and
    lbswap's steps report no progress, nor reads any. A step's state, result and failure are stored as before."""

    def set_task_progress(self, task_name: str, progress: float, details: Any = None) -> None:
        if details is not None:  # a step's own report (none does): stored as taskflow stores it
            super().set_task_progress(task_name, progress, details=details)


class _Engine(SerialActionEngine):  # type: ignore[misc]
    """taskflow's serial engine (what ``engines.load`` picks by default, without looking it up through its entry
    points on every load) over :class:`_Storage`."""

    @misc.cachedproperty  # type: ignore[untyped-decorator]
    def storage(self) -> Any:
        def scopes(atom_name: str) -> Any:
            return self._runtime.fetch_scopes_for(atom_name) if self._compiled else None

        return _Storage(self._flow_detail, backend=self._backend, scope_fetcher=scopes)


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
