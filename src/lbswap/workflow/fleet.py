"""A campaign driven by this process over a fleet: canary swaps one by one, then the rest in parallel, paced,
with a circuit breaker and a limit on clones being built at once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stevedore.driver import DriverManager
from taskflow.engines.helpers import ENGINE_DEFAULT, ENGINES_NAMESPACE

from lbswap.clouds.base import Cloud
from lbswap.clouds.watch import StatusWatcher
from lbswap.errors import StopSwap
from lbswap.journal import Journal
from lbswap.model import MARKER_CAMPAIGN
from lbswap.state import UNSUCCESSFUL, SwapState
from lbswap.workflow.context import CreationSlots, Slots, SwapOptions
from lbswap.workflow.guard import Guard, GuardedCloud
from lbswap.workflow.results import Event, EventSink
from lbswap.workflow.swap import SwapDriver


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


class CampaignDriver:
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
        self.creating: Slots = CreationSlots(None, guard.check)
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

    def swaps(self, lb_id: str | None = None) -> list[SwapDriver]:
        rows = self.journal.swaps(self.campaign_id)
        return [SwapDriver(self, r) for r in rows if lb_id is None or r.lb_id == lb_id]

    def drive(self, swaps: Sequence[SwapDriver], policy: FleetPolicy, *, finalize: bool = False) -> None:
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

        def one(swap: SwapDriver) -> None:
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
            warm_engines()
            with ThreadPoolExecutor(max_workers=policy.parallel, thread_name_prefix="swap") as pool:
                list(pool.map(one, rest))
        if stop.is_set():
            raise stop.error()


def warm_engines() -> None:
    """Find taskflow's engine once, before the swaps' threads start: taskflow finds it through stevedore, whose
    entry point cache the first caller builds, and swaps starting at once all built it (at --parallel 50,
    39 times: seconds of CPU before the first step)."""
    DriverManager(ENGINES_NAMESPACE, ENGINE_DEFAULT)
