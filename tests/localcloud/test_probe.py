"""The floating IP probe's analysis (tier 1: records made up, no cloud)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from lbswap.localcloud.probe import Record, analyze, get, load, main, probe


def rec(start: float, answer: str, *, ok: bool = True, took: float = 0.005) -> Record:
    return Record(start, start + took, ok, answer)


def test_switch_is_the_first_connection_from_which_every_answer_is_the_target() -> None:
    records = [rec(t / 100, "old") for t in range(10)] + [rec(0.10, "new"), rec(0.11, "old")]
    records += [rec(t / 100, "new") for t in range(12, 20)]
    move = analyze(records, "new", api_answered=0.095)
    assert move.switched_at == pytest.approx(0.12)  # not 0.10: an answer from the source came after it
    assert move.served_by_target_after == 8
    assert move.source_after_answer == 1  # 0.11, started after the API answered
    assert move.delay_after(0.095) == pytest.approx(0.025)
    assert move.failed == 0 and move.connections == 20


def test_failures_and_the_longest_gap_while_connecting_but_not_the_tail() -> None:
    records = [rec(0.00, "old"), rec(0.01, "old"), rec(0.02, "x", ok=False), rec(0.03, "new", took=0.5)]
    records += [rec(0.04, "new"), rec(0.30, "new"), rec(0.31, "new", took=2.0)]
    move = analyze(records, "new", api_answered=0.0)
    assert move.failed == 1
    # answers end at .005 .015 (.045 and .53 are cut to the last start, .31) .045 .305 .31: the gap .045 -> .305
    assert move.longest_gap == pytest.approx(0.26)
    assert move.switched_at == pytest.approx(0.03)


def test_never_switched() -> None:
    move = analyze([rec(0.0, "old"), rec(0.1, "old")], "new", api_answered=0.0)
    assert move.switched_at is None and move.delay_after(0.0) is None and move.served_by_target_after == 0


def test_records_round_trip_through_the_probe_file(tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    path.write_text(json.dumps([[1.0, 1.5, True, "member-a"], [2.0, 4.0, False, "TimeoutError"]]))
    assert load(path) == [Record(1.0, 1.5, True, "member-a"), Record(2.0, 4.0, False, "TimeoutError")]


def test_a_refused_connection_is_a_failure_with_its_error() -> None:
    ok, answer = get("127.0.0.1", 9, timeout=1.0)  # the discard port: nothing listens here
    assert not ok and "Refused" in answer


def test_the_probe_refuses_to_run_in_the_hosts_namespace(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):  # tier 1 runs in the host's namespace: no connection is opened
        main(["192.0.2.1", "--out", str(tmp_path / "out.json"), "--duration", "1"])
    assert not (tmp_path / "out.json").exists()


def test_a_stop_ends_the_probe_early_with_the_records_of_the_connections_it_opened() -> None:
    stop = threading.Event()
    stop.set()  # before the first connection: none is opened, however long the duration
    assert probe("127.0.0.1", 9, rate=100.0, duration=300.0, stop=stop) == []
    stop = threading.Event()
    timer = threading.Timer(0.25, stop.set)
    timer.start()
    started = time.monotonic()
    records = probe("127.0.0.1", 9, rate=20.0, duration=300.0, stop=stop)  # refused at once: the discard port
    assert time.monotonic() - started < 5.0  # not 300 s
    assert 2 <= len(records) <= 10 and not any(r.ok for r in records)
    assert all(r.start < started + 1.0 for r in records)
