"""The demo shows the post-flip check's measure: per fip-swap row the delay between the API answering the flip and
the clone serving new connections (the table's column and the report's ``api_to_clone_ms``), and on the
timeline a "clone served" line labelled with it."""

from __future__ import annotations

from lbswap.cli.lab_actions import _demo_rows
from lbswap.lab.demo import _api_to_clone_ms, _upper_bound_only, settle_marks
from lbswap.workflow.results import SwapResult


def _settle(address: str, answered: float, served: float | None, outcome: str) -> dict[str, object]:
    return {
        "floating_ip_address": address,
        "api_answered_at": answered,
        "clone_served_at": served,
        "delay_seconds": None if served is None else round(served - answered, 3),
        "outcome": outcome,
        "probes": 3,
    }


SWAP = SwapResult(
    "lb-1",
    "fip-swap-single-http",
    "fip-swap",
    "done",
    settle=[
        _settle("203.0.113.10", 100.0, 100.25, "served by the clone"),
        _settle("203.0.113.11", 100.1, 101.3, "served by the clone"),
    ],
)


def test_the_slowest_floating_ip_is_the_rows_delay_and_each_is_a_mark() -> None:
    assert _api_to_clone_ms(SWAP) == 1200.0
    assert settle_marks(SWAP) == [("clone served", "<=+0.25 s", 100.25), ("clone served", "<=+1.20 s", 101.3)]
    unknown = SwapResult("lb-2", "x", "fip-swap", "done", settle=[_settle("203.0.113.12", 1.0, None, "unknown")])
    assert _api_to_clone_ms(unknown) is None
    assert settle_marks(unknown) == []
    assert _api_to_clone_ms(None) is None and settle_marks(None) == []
    assert _upper_bound_only(SWAP)  # neither floating IP's probes met the source
    bracketed = SwapResult("lb-3", "x", "fip-swap", "done", settle=[{**SWAP.settle[0], "source_served_until": 100.1}])
    assert not _upper_bound_only(bracketed) and not _upper_bound_only(None)
    assert settle_marks(bracketed) == [("clone served", "+0.25 s", 100.25)]


def test_the_table_has_the_delay_beside_the_fip_swap_twin() -> None:
    common = {"topology": "SINGLE", "failed": 0, "attempts": 10, "longest_gap_ms": 5.0, "long_lived_cut": 0}
    common |= {"long_lived_total": 2, "upgrade_seconds": 9.0}
    rows = [
        {"lb": "fip-swap-single-http", "strategy": "fip-swap", "api_to_clone_ms": 1200.0, **common},
        {"lb": "failover-single-http", "strategy": "failover", "api_to_clone_ms": None, **common},
        {"lb": "fip-swap-ha-http", "strategy": "fip-swap", "api_to_clone_ms": None, "settle": ["unknown"], **common},
    ]
    table = {row[0]: row for row in _demo_rows(rows)}
    assert table["single-http"][-1] == "1200"
    rows[0]["api_to_clone_upper_bound"] = True  # no probe met the source: the probe's start bounds it
    assert _demo_rows(rows)[0][-1] == "<=1200"
    assert table["ha-http"][-1] == "unknown"
