"""Progress of a campaign, fed by the core's event callback: made for fleets of a thousand load balancers.

On a terminal, a live rich view on stderr: one overall bar with the count of swaps in each state and an
estimate of the time left, then only the swaps in flight and the latest failures. Elsewhere (logs, CI) one
plain line per event, so stdout stays clean for `-f json|yaml`. Names and messages are tenant text: shown
through lbswap.textsafe in both.

Every event costs O(1) (counts and the in-flight set are kept as events arrive); a frame costs O(in flight),
never O(fleet), and frames are drawn by rich's refresh thread a few times a second, not once per event.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lbswap.textsafe import rich_text, shown

#: the swap states counted on the bar, in the order shown, with the words and styles an operator reads
STATES: dict[str, tuple[str, str]] = {
    "done": ("done", "green"),
    "running": ("running", "cyan"),
    "kept": ("kept", "blue"),
    "rolled_back": ("rolled back", "yellow"),
    "failed": ("failed", "bold red"),
    "skipped": ("skipped", "magenta"),
    "pending": ("waiting", "dim"),
}
#: states in which a swap's work for this command is over (kept waits for finalize or rollback)
FINISHED = frozenset({"done", "kept", "rolled_back", "failed", "skipped"})
#: step statuses that mean the step is under way
OPEN = frozenset({"start", "reverting"})
STATUS_STYLE = {
    "start": "cyan",
    "done": "green",
    "failed": "bold red",
    "reverting": "yellow",
    "reverted": "yellow",
    "info": "white",
    "skipped": "yellow",
    "rolled_back": "yellow",
}
#: the state a swap without swap-level events (recovery) is in after a step status; otherwise running
_STEP_STATE = {"failed": "failed", "done": "done", "reverted": "done"}
SWAP_STEP = "swap"  # the step name of swap-level events, whose status is the swap's new state
MAX_IN_FLIGHT_ROWS = 10
MAX_FAILURES = 5


@dataclass(slots=True)
class _Swap:
    lb_id: str
    name: str
    state: str = "pending"
    step: str = ""
    status: str = ""
    message: str = ""
    since: float = 0.0  # on the view's clock: when the step's status (or the swap's state) last changed
    open: bool = False  # a step has started and not ended
    has_state: bool = False  # a swap-level event came: its state is the runner's, not derived from steps

    @property
    def in_flight(self) -> bool:
        return self.state == "running" or self.open


@dataclass(slots=True)
class _Failure:
    name: str
    step: str
    message: str


class ProgressView:
    """Callable event sink and context manager: ``with ProgressView(plans) as view: run(..., on_event=view)``.

    ``plans`` are the swaps to come (anything with ``lb_id`` and ``lb_name``); swaps first seen in an event
    join the count. ``clock`` measures elapsed and remaining time (events' own ``at`` mixes clocks).
    """

    def __init__(
        self,
        plans: Sequence[Any],
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_rows: int = MAX_IN_FLIGHT_ROWS,
        max_failures: int = MAX_FAILURES,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.max_rows = max_rows
        self.max_failures = max_failures
        self.live: Live | None = None
        self.started = clock()
        self.counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self._lock = threading.Lock()  # events come from the runner, frames from rich's refresh thread
        self._swaps: dict[str, _Swap] = {}
        self._in_flight: dict[str, _Swap] = {}
        self._failures: OrderedDict[str, _Failure] = OrderedDict()
        self._first_run: float | None = None  # when the first swap started running: the rate's origin
        self._worked = 0  # swaps that ran and then finished: the rate's numerator (skips cost no time)
        for plan in plans:
            self._swap(plan.lb_id, plan.lb_name)
        self._progress = Progress(
            TextColumn("lbswap", style="bold"),
            BarColumn(bar_width=40),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}", markup=False),
            get_time=clock,
            expand=False,
        )
        self._task: TaskID = self._progress.add_task("swaps", total=len(self._swaps), eta="")

    def __enter__(self) -> ProgressView:
        if self.enabled and self.stream.isatty():
            self.live = Live(
                console=Console(file=self.stream),
                get_renderable=self.renderable,
                refresh_per_second=4,
                transient=False,
            )
            self.live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.__exit__(exc_type, exc, tb)  # draws the last frame

    def __call__(self, event: Any) -> None:
        with self._lock:
            self._apply(event)
        if self.live is None and self.enabled:
            clock = time.strftime("%H:%M:%S")
            text = f"{clock} {shown(event.lb_name or event.lb_id)} {shown(event.step)} {shown(event.status)}"
            if event.message:
                text += f": {shown(event.message)}"
            print(text, file=self.stream, flush=True)

    # state, kept as events arrive
    def _swap(self, lb_id: str, name: str) -> _Swap:
        swap = self._swaps.get(lb_id)
        if swap is None:
            swap = self._swaps[lb_id] = _Swap(lb_id, name or "")
            self.counts["pending"] += 1
        elif name:
            swap.name = name
        return swap

    def _apply(self, event: Any) -> None:
        now = self.clock()
        swap = self._swap(str(event.lb_id), event.lb_name)
        step, status, message = str(event.step), str(event.status), event.message or ""
        if step == SWAP_STEP:
            swap.has_state = True
            if status == "running" and not swap.open:
                swap.since = now
            self._move(swap, status, now)
        else:
            swap.step = step
            if status == "info":  # a detail of the step under way, not a change of its status
                swap.message = message or swap.message
            else:
                swap.status, swap.open, swap.since, swap.message = status, status in OPEN, now, message
            if not swap.has_state:  # no runner behind these events (recovery): the steps tell the state
                self._move(swap, _STEP_STATE.get(status, "running"), now)
        if status == "failed":
            self._fail(swap, message)
        if swap.in_flight:
            self._in_flight[swap.lb_id] = swap
        else:
            self._in_flight.pop(swap.lb_id, None)

    def _fail(self, swap: _Swap, message: str) -> None:
        """Record the latest failure of ``swap``: one entry per load balancer, the newest last."""
        earlier = self._failures.pop(swap.lb_id, None)
        if not message and earlier is not None:
            message = earlier.message  # a swap-level failure without its own words keeps its step's
        self._failures[swap.lb_id] = _Failure(swap.name or swap.lb_id, swap.step, message)
        while len(self._failures) > self.max_failures:
            self._failures.popitem(last=False)

    def _move(self, swap: _Swap, state: str, now: float) -> None:
        if state == swap.state:
            return
        self.counts[swap.state] -= 1
        self.counts[state] = self.counts.get(state, 0) + 1
        if state == "running" and self._first_run is None:
            self._first_run = now
        if swap.state == "running" and state in FINISHED and state != "skipped":
            self._worked += 1
        swap.state = state

    # frames
    def eta(self, now: float | None = None) -> str:
        """Time left at the rate swaps have finished since the first one started, or why there is none."""
        now = self.clock() if now is None else now
        left = self.counts["pending"] + self.counts["running"]
        if left == 0:
            return ""
        if not self._worked or self._first_run is None or now <= self._first_run:
            return "ETA estimating…"
        rate = self._worked / (now - self._first_run)
        return f"ETA {duration(left / rate)}"

    def renderable(self) -> RenderableType:
        """The live view as it stands: bar and counts, swaps in flight, latest failures."""
        with self._lock:
            now = self.clock()
            finished = sum(self.counts.get(state, 0) for state in FINISHED)
            self._progress.update(self._task, total=len(self._swaps), completed=finished, eta=self.eta(now))
            parts: list[RenderableType] = [self._progress, self._counts_line()]
            if self._in_flight:
                parts.append(self._flight_table(now))
            if self._failures:
                parts.append(self._failures_table())
            return Group(*parts)

    def _counts_line(self) -> Text:
        line = Text()
        for state, count in self.counts.items():
            word, style = STATES.get(state, (state, ""))
            if line:
                line.append("  ")
            line.append(f"{word} ", style="dim" if not count else "")
            line.append(str(count), style=style if count else "dim")
        return line

    def _flight_table(self, now: float) -> Table:
        shown_rows = heapq.nsmallest(self.max_rows, self._in_flight.values(), key=lambda s: s.since)
        table = Table(title=f"in flight: {len(self._in_flight)}", title_justify="left", expand=False)
        table.add_column("load balancer", no_wrap=True, overflow="ellipsis", max_width=40)
        table.add_column("step", no_wrap=True)
        table.add_column("for", justify="right", no_wrap=True)  # time in this step and status
        table.add_column("detail", no_wrap=True, overflow="ellipsis", max_width=60)
        for swap in shown_rows:
            step = f"{swap.step} {swap.status}" if swap.step else swap.state
            table.add_row(
                rich_text(swap.name or swap.lb_id),
                rich_text(step, STATUS_STYLE.get(swap.status, "")),
                duration(now - swap.since),
                rich_text(swap.message),
            )
        hidden = len(self._in_flight) - len(shown_rows)
        if hidden > 0:
            table.caption = f"+{hidden} more"
            table.caption_justify = "left"
        return table

    def _failures_table(self) -> Table:
        table = Table(title="latest failures", title_justify="left", title_style="bold red", expand=False)
        table.add_column("load balancer", no_wrap=True, overflow="ellipsis", max_width=40)
        table.add_column("step", no_wrap=True)
        table.add_column("now", no_wrap=True)
        table.add_column("error", overflow="fold")
        for lb_id, failure in reversed(self._failures.items()):
            state = self._swaps[lb_id].state
            word, style = STATES.get(state, (state, ""))
            table.add_row(
                rich_text(failure.name), rich_text(failure.step), rich_text(word, style), rich_text(failure.message)
            )
        return table


def duration(seconds: float) -> str:
    """``seconds`` as an operator reads it: ``45s``, ``3m05s``, ``2h07m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
