"""The probe's downtime math on synthetic attempts (no packets)."""

from __future__ import annotations

from lbswap.lab.probe import (
    Attempt,
    LongLived,
    Target,
    by_target,
    longest_gap_ms,
    parse_response,
    summarize,
    with_images,
)


def steady(n: int, *, start: float = 100.0, step: float = 0.005, image: str = "old") -> list[Attempt]:
    return [Attempt("lb", start + i * step, True, 2.0, image=image) for i in range(n)]


def test_no_failures_gap_is_one_interval() -> None:
    attempts = steady(1000)
    summary = summarize(attempts, [])
    assert summary.attempts == 1000
    assert summary.failed == 0
    assert summary.longest_gap_ms == 5.0


def test_failed_run_makes_the_gap() -> None:
    attempts = steady(100)
    attempts[40:60] = [Attempt("lb", a.t, False, 3000.0, "TimeoutError") for a in attempts[40:60]]
    summary = summarize(attempts, [])
    assert summary.failed == 20
    assert summary.longest_gap_ms == 105.0  # from attempt 39 completing to attempt 60 completing


def test_failures_at_the_edges_count_to_the_window() -> None:
    attempts = steady(10)
    attempts[7:] = [Attempt("lb", a.t, False, 1.0, "ConnectionRefusedError") for a in attempts[7:]]
    assert longest_gap_ms(attempts) == 13.0  # from attempt 6 completing (+2 ms) to the last attempt


def test_nothing_succeeded_is_the_whole_window() -> None:
    attempts = [Attempt("lb", 10.0 + i, False, 1.0, "x") for i in range(5)]
    assert longest_gap_ms(attempts) == 4000.0
    assert longest_gap_ms([]) == 0.0


def test_a_late_success_is_slow_not_a_gap() -> None:
    attempts = steady(10)
    attempts[5] = Attempt("lb", attempts[5].t, True, 1003.0, image="old")
    summary = summarize(attempts, [])
    assert summary.slow == 1
    assert summary.longest_gap_ms == 10.0  # attempt 4 to attempt 6; the late one completes after the window
    assert summary.max_latency_ms == 1003.0
    assert summary.probe_spacing_ms == 5.0


def test_an_outage_rescued_by_resent_syns_is_still_a_gap() -> None:
    # down for 1 s from t=100.1: the attempts in it complete only when the SYN is resent, at t=101.1 or later
    attempts = [
        Attempt("lb", 100 + i * 0.005, True, 2.0 if not 100.1 <= 100 + i * 0.005 < 101.1 else 1000.0 + 2.0)
        for i in range(400)
    ]
    summary = summarize(attempts, [])
    assert summary.failed == 0
    assert summary.slow == 200
    assert summary.longest_gap_ms >= 1000.0


def test_images_in_the_order_they_served() -> None:
    attempts = steady(10, image="old") + steady(10, start=100.05, image="new")
    summary = summarize(attempts, [])
    assert summary.images == ("old", "new")
    assert summary.first_served["new"] == 100.05


def test_long_lived_cut_counts() -> None:
    streams = [
        LongLived("lb", 1.0, 9.0, False, 100, 100),
        LongLived("lb", 1.0, 5.0, True, 40, 100, "TimeoutError"),
        LongLived("other", 1.0, 9.0, False, 100, 100),
    ]
    per = by_target(steady(3), streams)
    assert per["lb"].long_lived_total == 2
    assert per["lb"].long_lived_cut == 1
    assert per["other"].attempts == 0


def test_images_from_peer_addresses_for_tcp() -> None:
    attempts = [Attempt("tcp", 1.0, True, 1.0, peer="10.0.3.10"), Attempt("tcp", 2.0, True, 1.0, image="x")]
    filled = with_images(attempts, {"10.0.3.10": "amphora-new"})
    assert [a.image for a in filled] == ["amphora-new", "x"]


def test_parse_response_and_target_spec() -> None:
    ok, headers, body = parse_response(b"HTTP/1.0 200 OK\r\nX-Lbswap-Image: new\r\n\r\nmember m0 peer 10.0.3.1\n")
    assert ok and headers["x-lbswap-image"] == "new" and body.startswith("member")
    assert not parse_response(b"HTTP/1.0 503 Service Unavailable\r\n\r\n")[0]
    assert not parse_response(b"")[0]
    target = Target.parse("web=203.0.113.10:80")
    assert target == Target("web", "203.0.113.10", 80)
    assert Target.parse(target.spec()) == target
