"""The progress view at fleet scale: counts per state, an estimate of the time left, only the swaps in flight
and the latest failures on a terminal; one plain line per event elsewhere; tenant text never interpreted.
"""

from __future__ import annotations

import io
import re
import time
from types import SimpleNamespace

import pytest
from rich.console import Console

from lbswap.cli.progress import ProgressView, duration
from lbswap.state import SwapState
from lbswap.workflow.runner import Event

HOSTILE = "oops[/red]\x1b[31m"
STEPS = ("snapshot", "clone", "wait", "flip", "drain", "retire")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _plans(count: int, name: str = "web-{}") -> list[SimpleNamespace]:
    return [SimpleNamespace(lb_id=f"lb-{i}", lb_name=name.format(i)) for i in range(count)]


def _send(view: ProgressView, i: int, step: str, status: str, message: str = "", name: str = "") -> None:
    view(Event("c-1", f"lb-{i}", name or f"web-{i}", step, status, 0.0, message))


def _swap(view: ProgressView, i: int, end: str, *, steps: tuple[str, ...] = STEPS) -> int:
    """Drive swap ``i`` through ``steps`` to ``end``; return the number of events sent."""
    _send(view, i, "swap", "running")
    for step in steps:
        _send(view, i, step, "start")
        _send(view, i, step, "done")
    _send(view, i, "swap", end)
    return 2 + 2 * len(steps)


def _fleet(view: ProgressView, clock: Clock) -> int:
    """1,000 swaps: 600 done, 100 kept, 50 rolled back, 30 failed, 20 skipped, 150 in flight, 50 waiting."""
    sent = 0
    for i in range(1000):
        clock.now += 0.25
        if i < 600:
            sent += _swap(view, i, "done")
        elif i < 700:
            sent += _swap(view, i, "kept")
        elif i < 780:
            _send(view, i, "swap", "running")
            _send(view, i, "flip", "start")
            _send(view, i, "flip", "failed", f"flip of web-{i} refused: 412")
            end = "rolled_back" if i < 750 else "failed"
            _send(view, i, "swap", end, f"web-{i}: flip refused" if end == "failed" else "")
            sent += 4
        elif i < 800:
            _send(view, i, "swap", "skipped", "not started: the circuit breaker opened")
            sent += 1
        elif i < 950:
            _send(view, i, "swap", "running")
            _send(view, i, "clone", "start")
            _send(view, i, "clone", "info", f"clone of web-{i} building")
            sent += 3
    return sent


def _text(view: ProgressView, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(view.renderable())
    return console.export_text()


def test_fleet_counts_rows_in_flight_and_failures_stay_small() -> None:
    clock = Clock()
    view = ProgressView(_plans(1000), enabled=False, clock=clock)
    _fleet(view, clock)
    assert view.counts == {
        "done": 600,
        "running": 150,
        "kept": 100,
        "rolled_back": 50,
        "failed": 30,
        "skipped": 20,
        "pending": 50,
    }
    out = _text(view)
    print(out)
    assert "800/1000" in out
    assert re.search(r"done 600\s+running 150\s+kept 100\s+rolled back 50\s+failed 30\s+skipped 20\s+waiting 50", out)
    assert "in flight: 150" in out and "+140 more" in out
    in_flight = [line for line in out.splitlines() if "clone start" in line]
    assert len(in_flight) == 10
    # the oldest in flight come first: a stuck swap is never hidden behind fresh ones
    assert "web-800 " in in_flight[0] and "web-809 " in in_flight[-1]
    assert "clone of web-800 building" in in_flight[0]
    # the five latest failures, newest first, each with its message and the state it ended in
    failures = out[out.index("latest failures") :].splitlines()
    named = [re.search(r"web-\d+", line) for line in failures]
    assert [m.group(0) for m in named if m] == ["web-779", "web-778", "web-777", "web-776", "web-775"]
    assert "web-779: flip refused" in out  # the swap's own error replaces its step's
    assert "web-774" not in out
    assert len(out.splitlines()) < 40, "the view stays one screen however large the fleet"


def test_rolled_back_failure_keeps_the_steps_message() -> None:
    view = ProgressView(_plans(1), enabled=False, clock=Clock())
    _send(view, 0, "swap", "running")
    _send(view, 0, "wait", "start")
    _send(view, 0, "wait", "failed", "clone never became ACTIVE")
    _send(view, 0, "wait", "reverting")
    assert "wait reverting" in _text(view), "a swap undoing its step is in flight"
    _send(view, 0, "wait", "reverted")
    _send(view, 0, "swap", "rolled_back", "")
    out = _text(view)
    assert re.search(r"web-0\s+│ wait\s+│ rolled back\s+│ clone never became ACTIVE", out)
    assert "in flight" not in out


def test_time_left_from_the_rate_of_finished_swaps() -> None:
    clock = Clock()
    view = ProgressView(_plans(10), enabled=False, clock=clock)
    assert view.eta() == "ETA estimating…"
    for i in range(10):
        _send(view, i, "swap", SwapState.RUNNING)  # the runner sends its typed state
    clock.now += 5
    _send(view, 0, "swap", SwapState.DONE)
    _send(view, 1, "swap", "skipped")  # a skip costs no time: it does not speed up the estimate
    clock.now += 5
    _send(view, 2, "swap", "done")
    # 2 swaps worked in 10 s, 7 left: 35 s
    assert view.eta() == "ETA 35s"
    assert "ETA 35s" in _text(view)
    for i in range(3, 10):
        _send(view, i, "swap", "kept")
    assert view.eta() == ""


def test_in_flight_shows_how_long_in_the_step() -> None:
    clock = Clock()
    view = ProgressView(_plans(3), enabled=False, clock=clock)
    _send(view, 0, "swap", "running")
    _send(view, 0, "drain", "start")
    clock.now += 75
    _send(view, 0, "drain", "info", "40 connections left")
    clock.now += 10
    assert re.search(r"web-0\s+│ drain start\s+│\s+1m25s\s+│ 40 connections left", _text(view))
    assert duration(7322) == "2h02m" and duration(5) == "5s" and duration(-1) == "0s"


def test_kept_swap_rolled_back_by_the_operator_is_in_flight_meanwhile() -> None:
    view = ProgressView(_plans(1), enabled=False, clock=Clock())
    _swap(view, 0, "kept")
    assert "in flight" not in _text(view)
    _send(view, 0, "rollback", "start")
    assert "rollback start" in _text(view)
    assert view.counts["kept"] == 1
    _send(view, 0, "rollback", "done")
    _send(view, 0, "swap", "rolled_back", "rolled back by the operator")
    assert view.counts["kept"] == 0 and view.counts["rolled_back"] == 1
    assert "in flight" not in _text(view)


def test_recovery_events_without_plans_or_swap_states() -> None:
    view = ProgressView([], enabled=False, clock=Clock())
    assert "0/0" in _text(view)
    for i in range(3):
        _send(view, i, "recover", "start", f"deleting clone c-{i}", name="-")
    _send(view, 0, "recover", "done", "delete-clone")
    _send(view, 1, "recover", "failed", "clone c-1 is PENDING_UPDATE")
    assert view.counts == {**dict.fromkeys(view.counts, 0), "done": 1, "failed": 1, "running": 1}
    out = _text(view)
    assert "in flight: 1" in out and "deleting clone c-2" in out
    assert "clone c-1 is PENDING_UPDATE" in out


def test_hostile_name_is_shown_escaped_and_never_interpreted() -> None:
    clock = Clock()
    view = ProgressView(_plans(3, HOSTILE + "{}"), enabled=False, clock=clock)
    _send(view, 0, "swap", "running", name=HOSTILE + "0")
    _send(view, 0, "flip", "start", f"moving {HOSTILE}", name=HOSTILE + "0")
    _send(view, 1, "swap", "running", name=HOSTILE + "1")
    _send(view, 1, "flip", "failed", f"load balancer {HOSTILE}: went wrong", name=HOSTILE + "1")
    stream = io.StringIO()
    console = Console(file=stream, width=120, force_terminal=True, color_system="standard")
    console.print(view.renderable())
    out = stream.getvalue()
    assert "oops[/red]\\x1b[31m0" in out  # in flight, as text
    assert "moving oops[/red]\\x1b[31m" in out
    assert "oops[/red]\\x1b[31m1" in out  # among the failures
    assert "load balancer oops[/red]\\x1b[31m: went wrong" in out
    assert "oops[/red]\x1b" not in out, "the name's escape sequence never reaches the terminal"


def test_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    with ProgressView(_plans(2), stream=stream) as view:
        assert view.live is None
        _send(view, 0, "swap", "running")
        _send(view, 0, "flip", "failed", f"refused {HOSTILE}", name=HOSTILE)
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d web-0 swap running", lines[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d oops\[/red\]\\x1b\[31m flip failed: refused oops\[/red\]\\x1b\[31m", lines[1])
    assert len(lines) == 2


def test_disabled_view_prints_nothing() -> None:
    stream = Terminal()
    with ProgressView(_plans(1), enabled=False, stream=stream) as view:
        _swap(view, 0, "done")
    assert view.live is None and stream.getvalue() == ""


def test_live_view_on_a_terminal_ends_with_the_last_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    stream = Terminal()
    clock = Clock()
    with ProgressView(_plans(20), stream=stream, clock=clock) as view:
        assert view.live is not None
        for i in range(20):
            clock.now += 1
            _swap(view, i, "failed" if i == 7 else "done")
    out = stream.getvalue()
    last = out[out.rindex("lbswap") :]
    assert "20/20" in last and re.search(r"done\s+\S*19", last) and "web-7" in last
    assert len(re.findall(r"web-\d+", last)) == 1, "only the failure is listed, not one row per swap"


def test_a_thousand_swaps_cost_little_cpu() -> None:
    clock = Clock()
    view = ProgressView(_plans(1000), enabled=False, clock=clock)
    start = time.process_time()
    sent = _fleet(view, clock)
    events = time.process_time() - start
    start = time.process_time()
    frames = 20
    for _ in range(frames):
        _text(view)
    frame = (time.process_time() - start) / frames
    print(f"{sent} events: {events * 1000:.1f} ms CPU; one frame of the 1,000-swap view: {frame * 1000:.1f} ms CPU")
    assert sent > 9000
    assert events < 1.0 and frame < 0.5  # loose bounds: a shared machine; the printed numbers are the measure
