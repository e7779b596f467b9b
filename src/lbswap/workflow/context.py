"""What every step of one swap shares: the swap's options, its context (cloud, callbacks, polling) and the
base class of its steps, which reports start/done/failed and names the load balancer and step in errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskflow import task

from lbswap import clone as clone_mod
from lbswap.clouds.base import Cloud
from lbswap.clouds.watch import StatusWatcher
from lbswap.errors import LbswapError
from lbswap.model import LBSummary


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
    # after the flip, until a probe through each floating IP is served by the clone (the data plane follows the
    # API late); 0: do not wait (workflow/settle.py)
    settle_timeout: float = 10.0
    settle_interval: float = 0.2
    watch: float = 60.0  # 0: no watch
    watch_max_errors: int = 2
    watch_interval: float = 2.0


class Slots(Protocol):
    """Where a swap takes a slot before its create and gives it back when its clone is ready (``--max-creating``):
    :class:`CreationSlots` in one process, ``lbswap.scaleout.leases.CreationSlots`` across conductors."""

    def limit(self, limit: int | None) -> None: ...

    def take(self, who: str) -> None: ...

    def give_back(self, who: str) -> None: ...


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
    creating: Slots = field(default_factory=lambda: CreationSlots(None, lambda: None))
    watcher: StatusWatcher | None = None  # the campaign's; without one, each wait polls on its own
    #: this campaign's clones of the source, as the preflight listed them just before the clone is created (one
    #: listing for both); taken by the create, None when it must list them itself (a resumed swap)
    listed_clones: tuple[LBSummary, ...] | None = None

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
