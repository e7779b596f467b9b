"""A conductor: claims swap jobs on the jobboard and drives each with the per-swap driver ``resume`` uses.

Several conductors share one jobboard and one journal. Per job (details: campaign id and load balancer id):

1. the campaign must belong to this conductor's cloud (I10): if not, the job is abandoned with one log line and
   left for a conductor that has that cloud's credentials;
2. :func:`lbswap.scaleout.leases.take` decides in the journal (canary, circuit breaker, ``--parallel`` across
   all conductors) and takes the swap's lease; a swap that may not start yet goes back on the board;
3. the swap is driven by :func:`lbswap.workflow.runner.drive_swap` under a guard on that lease (fencing before
   every side effect), while a thread keeps the jobboard claim from expiring;
4. the job is consumed once the swap ended; a stop (signal, lost lease) gives it back instead.

A conductor killed mid-swap stops extending its claim: the claim expires, another conductor claims the job,
its swap lease lapses (dead process, or no heartbeat for ``stale_after``) and the other conductor continues
the swap from the journal, as ``resume`` would.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from lbswap.clouds.base import Cloud
from lbswap.errors import JournalError, StopSwap, WrongCloud
from lbswap.journal import Journal, Lease, SwapRow
from lbswap.journal_db import Server
from lbswap.scaleout import leases
from lbswap.scaleout.board import Board
from lbswap.state import SwapState, allowed
from lbswap.workflow.guard import Guard, StopRequest
from lbswap.workflow.runner import Event, check_cloud, drive_swap

LOG = logging.getLogger(__name__)
#: test hook: with a path here, every side effect a conductor makes (past the guard's fencing) is appended to
#: that file as one JSON line (swap, pid, time, call), so a test can show no swap had two drivers at once
SIDE_EFFECT_LOG = os.environ.get("LBSWAP_TEST_SIDE_EFFECT_LOG", "")
SIDE_EFFECTS = frozenset(
    {
        "create_load_balancer",
        "delete_load_balancer",
        "rename_load_balancer",
        "failover_load_balancer",
        "failover_amphora",
        "move_floating_ip",
        "create_floating_ip",
        "delete_floating_ip",
    }
)


@dataclass(frozen=True)
class Timing:
    """How fast a lost conductor is replaced. ``claim_expiry``: the jobboard claim lapses this long after its
    holder stopped extending it; ``stale_after``: a swap's lease lapses this long without a heartbeat (keep it
    above ``claim_expiry``); ``heartbeat``: how often both are renewed; ``poll``: how often an idle conductor
    looks at the board."""

    claim_expiry: float = 30.0
    stale_after: float = 60.0
    heartbeat: float = 5.0
    poll: float = 2.0
    retry: float = 2.0  # a job that may not start yet is looked at again after this long


class SwapGuard(Guard):
    """The journal's guard on a swap's lease, renewed every ``interval`` seconds (a campaign's guard beats
    every 5 s, which a short ``stale_after`` would outrun)."""

    def __init__(self, journal: Journal, lease: Lease, stop: StopRequest, interval: float) -> None:
        self.interval = interval
        super().__init__(journal, lease, stop)

    def _beat(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                held = self.journal.heartbeat(self.lease)
            except (StopSwap, Exception) as exc:  # retried; fencing decides
                LOG.debug("swap lease heartbeat failed: %s", exc)
                continue
            if not held:
                self.stop.set(f"swap {self.lease.campaign_id}: this conductor lost its lease; it stopped")
                return


class _Recorded:
    """The cloud, each side effect logged to ``SIDE_EFFECT_LOG`` before it is made (the test hook)."""

    def __init__(self, cloud: Cloud, swap: str) -> None:
        self._cloud, self._swap = cloud, swap

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._cloud, name)
        if name not in SIDE_EFFECTS:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            line = json.dumps({"swap": self._swap, "pid": os.getpid(), "at": time.time(), "call": name}) + "\n"
            fd = os.open(SIDE_EFFECT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())  # one append: lines of several processes never mix
            finally:
                os.close(fd)
            return attribute(*args, **kwargs)

        return call


class _Claim:
    """Keeps a jobboard claim alive while its swap runs (extending it only while this conductor owns it)."""

    def __init__(self, jobboard: Any, job: Any, who: str, timing: Timing) -> None:
        self.jobboard, self.job, self.who, self.timing = jobboard, job, who, timing
        self.lost = False
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._extend, name=f"claim-{job.uuid[:8]}", daemon=True)
        self._thread.start()

    def _extend(self) -> None:
        while not self._halt.wait(self.timing.heartbeat):
            try:
                if self.jobboard.find_owner(self.job) != self.who:
                    self.lost = True  # expired (this process was stopped) and maybe claimed: the lease decides
                    return
                self.job.extend_expiry(self.timing.claim_expiry)
            except Exception as exc:  # the board is unreachable for a while: the lease still fences
                LOG.debug("claim extension failed: %s", exc)

    def close(self) -> None:
        self._halt.set()
        self._thread.join(timeout=self.timing.heartbeat * 2)


class Conductor:
    """Claims and drives swap jobs until ``stop`` is set; ``workers`` jobs at a time."""

    def __init__(
        self,
        jobboard: Any,
        board: Board,
        journal: Journal,
        cloud: Cloud,
        *,
        timing: Timing,
        workers: int = 1,
        name: str | None = None,
        stop: StopRequest | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.jobboard, self.board, self.journal, self.cloud = jobboard, board, journal, cloud
        self.timing, self.workers = timing, max(1, workers)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stop = stop or StopRequest()
        self.on_event = on_event
        self._lock = threading.Lock()
        self._guards: set[Guard] = set()
        self._later: dict[str, float] = {}  # job uuid -> not before (monotonic)
        self._foreign: set[str] = set()  # jobs of campaigns of another cloud: never claimed again
        self._clouds: dict[str, bool] = {}  # campaign id -> belongs to this conductor's cloud
        self._unknown: set[str] = set()  # jobs whose campaign this journal does not have
        self.counts = {"driven": 0, "skipped": 0, "given back": 0, "foreign": 0, "consumed": 0}

    # --- the loop ----------------------------------------------------------------------------------------

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._work, args=(f"{self.name}:{i}",), name=f"worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        self.stop.event.wait()
        with self._lock:
            for guard in self._guards:  # swaps in flight stop at their next step boundary, reverting nothing
                guard.stop.set(self.stop.reason, self.stop.exit_code)
        for thread in threads:
            thread.join()

    def _work(self, who: str) -> None:
        while not self.stop.is_set():
            try:
                worked = self._one(who)
            except (StopSwap, Exception) as exc:  # the board or the journal failed for a while: log, look again
                LOG.warning("conductor %s: %s", who, self._scrub(f"{type(exc).__name__}: {exc}"))
                worked = False
            if not worked:
                self.stop.event.wait(self.timing.poll)

    def _scrub(self, text: str) -> str:
        """``text`` with the jobboard's and the journal's passwords masked."""
        where = self.journal.path
        return self.board.scrub(where.scrub(text) if isinstance(where, Server) else text)

    def _one(self, who: str) -> bool:
        """Claim and handle one job; False when there was none to take."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from taskflow import exceptions as tf_exc
        jobs = sorted(self.jobboard.iterjobs(only_unclaimed=True, ensure_fresh=True), key=lambda j: j.sequence)
        views: dict[str, Callable[[str], leases.Decision] | None] = {}  # one journal read per campaign and scan
        for job in jobs:  # oldest first: a campaign's swaps in their order (the canary first)
            if self.stop.is_set():
                return True
            if not self._worth_claiming(job, views):
                continue
            try:
                self.jobboard.claim(job, who, expiry=self.timing.claim_expiry)
            except (tf_exc.UnclaimableJob, tf_exc.NotFound):
                continue
            self._handle(job, who)
            return True
        return False

    def _worth_claiming(self, job: Any, views: dict[str, Callable[[str], leases.Decision] | None]) -> bool:
        if job.uuid in self._foreign:
            return False
        with self._lock:
            if self._later.get(job.uuid, 0.0) > time.monotonic():
                return False
        campaign_id, lb_id = _ids(job)
        if campaign_id is None:
            return True  # claimed and consumed: it names no swap
        if self._clouds.get(campaign_id) is False:
            return False  # another cloud's campaign: said once, when its first job was abandoned
        if campaign_id not in views:
            try:
                views[campaign_id] = leases.peek(self.journal.path, campaign_id, stale_after=self.timing.stale_after)
            except Exception:  # the claim's own transaction decides
                views[campaign_id] = None
        view = views[campaign_id]
        if view is None:
            return True
        if view(lb_id).action in ("wait", "held"):
            self._defer(job)
            return False
        return True

    def _defer(self, job: Any, factor: float = 1.0) -> None:
        with self._lock:
            self._later[job.uuid] = time.monotonic() + self.timing.retry * factor

    def _give_back(self, job: Any, who: str) -> None:
        try:
            self.jobboard.abandon(job, who)
        except Exception as exc:  # the claim expired or another conductor has it: nothing to give back
            LOG.debug("could not abandon job %s: %s", job.uuid, exc)

    def _consume(self, job: Any, who: str) -> None:
        try:
            self.jobboard.consume(job, who)
            self.counts["consumed"] += 1
        except Exception as exc:  # another conductor holds it now: it finds the swap ended and consumes it
            LOG.debug("could not consume job %s: %s", job.uuid, exc)

    # --- one job -----------------------------------------------------------------------------------------

    def _handle(self, job: Any, who: str) -> None:
        campaign_id, lb_id = _ids(job)
        if campaign_id is None:
            LOG.warning("job %s carries no campaign and load balancer: consumed", job.uuid)
            self._consume(job, who)
            return
        try:
            campaign = self.journal.campaign(campaign_id)
            check_cloud(campaign, self.cloud)
        except WrongCloud:
            self._clouds[campaign_id] = False
            self._foreign.add(job.uuid)
            self.counts["foreign"] += 1
            LOG.info(
                "job %s: campaign %s belongs to cloud %s, not this conductor's (%s): left for another conductor",
                job.uuid,
                campaign_id,
                campaign.cloud,
                self.cloud.identity(),
            )
            self._give_back(job, who)
            return
        except JournalError as exc:  # posted against another journal (or not yet visible): said once per job
            if job.uuid not in self._unknown:
                self._unknown.add(job.uuid)
                LOG.warning("job %s: %s; left on the board (is this conductor's --journal the run's?)", job.uuid, exc)
            self._defer(job, 10)
            self._give_back(job, who)
            return
        self._clouds[campaign_id] = True
        decision = leases.take(self.journal.path, campaign_id, lb_id, stale_after=self.timing.stale_after)
        if decision.action == "finished":
            self._consume(job, who)
            return
        if decision.lease is None:  # wait or held: back on the board
            LOG.debug("job %s (%s %s): %s", job.uuid, campaign_id, lb_id, decision.why)
            self.counts["given back"] += 1
            self._defer(job)
            self._give_back(job, who)
            return
        self._drive(job, who, campaign_id, lb_id, decision)

    def _drive(self, job: Any, who: str, campaign_id: str, lb_id: str, decision: leases.Decision) -> None:
        assert decision.lease is not None
        guard = SwapGuard(self.journal, decision.lease, StopRequest(), self.timing.heartbeat)
        with self._lock:
            self._guards.add(guard)
            if self.stop.is_set():
                guard.stop.set(self.stop.reason, self.stop.exit_code)
        claim = _Claim(self.jobboard, job, who, self.timing)
        try:
            if decision.action == "skip":
                self._skip(campaign_id, lb_id, decision)
            else:
                LOG.info("%s %s: %s (job %s)", campaign_id, lb_id, decision.why, job.uuid)
                cloud = cast(Cloud, _Recorded(self.cloud, lb_id)) if SIDE_EFFECT_LOG else self.cloud
                row = self._drive_swap(campaign_id, lb_id, cloud, guard, decision.lease)
                LOG.info("%s %s: %s", campaign_id, lb_id, row.state)
                self.counts["driven"] += 1
        except StopSwap as exc:
            guard.stop.set(exc.message, exc.exit_code)
        finally:
            claim.close()
            with self._lock:
                self._guards.discard(guard)
            guard.close(release=False)
            leases.lapse(self.journal.path, decision.lease)
        if guard.stop.is_set():
            LOG.warning("%s %s: stopped (%s); the job goes back on the board", campaign_id, lb_id, guard.stop.reason)
            self._give_back(job, who)
            return
        self._consume(job, who)

    def _drive_swap(self, campaign_id: str, lb_id: str, cloud: Cloud, guard: Guard, lease: Lease) -> SwapRow:
        """:func:`lbswap.workflow.runner.drive_swap`, its ``--max-creating`` slots kept in the journal (the
        limit holds across conductors, a slot freed when its holder's lease lapses)."""
        slots = leases.CreationSlots(
            self.journal.path, lease, guard.check, stale_after=self.timing.stale_after, poll=min(self.timing.retry, 0.5)
        )
        return drive_swap(self.journal, campaign_id, lb_id, cloud, guard, self.on_event, creating=slots)

    def _skip(self, campaign_id: str, lb_id: str, decision: leases.Decision) -> None:
        assert decision.lease is not None
        row = self.journal.swap(campaign_id, lb_id)
        if not allowed(row.state, SwapState.SKIPPED):
            return
        error = f"not started: {decision.why}; nothing was changed on it"
        row.state, row.phase = SwapState.SKIPPED, "end"
        row.result.update(state=SwapState.SKIPPED, error=error)
        self.journal.save_swap(row, lease=decision.lease)
        self.counts["skipped"] += 1
        LOG.info("%s %s: skipped (%s)", campaign_id, lb_id, decision.why)


def _ids(job: Any) -> tuple[str | None, str]:
    details = job.details or {}
    campaign_id, lb_id = details.get("campaign"), details.get("lb")
    if not isinstance(campaign_id, str) or not isinstance(lb_id, str):
        return None, ""
    return campaign_id, lb_id
