"""The local image faults as pure rendering: which haproxy lines and which nftables table each fault gives,
and when a ``--fault-after`` fault begins."""

from __future__ import annotations

from typing import Any

import pytest

from lbswap.clouds.local import render
from tests.clouds.local.test_render import LB

AMPHORA = {"id": "amp-1", "address": "10.0.3.10"}
GOOD = {"name": "amphora-new", "template": "v2"}


def image(fault: str, after: float = 0.0) -> dict[str, Any]:
    return {**GOOD, "fault": fault, "fault_after": after}


def test_fault_from() -> None:
    assert render.fault_from(GOOD, 1000.0) is None
    assert render.fault_from(image("reset"), 1000.0) == 0  # from the start
    assert render.fault_from(image("reset", 30.0), 1000.2) == 1031  # rounded up to the whole second


@pytest.mark.parametrize(
    ("fault", "mode", "since", "lines"),
    [
        ("http-503", "http", 0, ["    http-request return status 503"]),
        ("http-503", "tcp", 0, ["    tcp-request connection reject"]),  # no HTTP to answer with: a reset
        ("http-503", "http", 1031, ["    http-request return status 503 if { date ge 1031 }"]),
        ("reset", "http", 0, ["    tcp-request connection reject"]),
        ("reset", "tcp", 1031, ["    tcp-request connection reject if { date ge 1031 }"]),
        ("stall", "http", 0, ["    timeout tarpit 3600s", "    http-request tarpit"]),
        (
            "stall",
            "tcp",
            1031,
            [
                "    tcp-request inspect-delay 3600s",
                "    tcp-request content accept if !{ date ge 1031 }",
                "    tcp-request content accept if WAIT_END",
            ],
        ),
        ("refuse", "http", 0, []),  # in nftables, not haproxy
    ],
)
def test_fault_rules(fault: str, mode: str, since: int, lines: list[str]) -> None:
    assert render.fault_rules(image(fault), mode, since) == lines


def test_a_good_image_renders_as_before() -> None:
    plain = render.render_haproxy(LB, amphora=AMPHORA, image=GOOD, stats_socket="/s")
    assert plain == render.render_haproxy(LB, amphora=AMPHORA, image=GOOD, stats_socket="/s", started_at=5.0)
    assert "tarpit" not in plain and "return status" not in plain and "date ge" not in plain
    assert render.render_fault_nft(GOOD, "10.0.2.10", [80], render.fault_from(GOOD, 5.0)) is None


def test_every_frontend_gets_the_fault() -> None:
    cfg = render.render_haproxy(LB, amphora=AMPHORA, image=image("http-503", 10.0), stats_socket="/s", started_at=100)
    http, tcp = cfg.split("frontend listener-http")[1].split("frontend listener-tcp")
    assert "    http-request return status 503 if { date ge 110 }" in http
    assert "    tcp-request connection reject if { date ge 110 }" in tcp.split("backend")[0]


def test_refuse_is_an_nftables_reset_to_new_connections() -> None:
    table = render.render_fault_nft(image("refuse"), "10.0.2.10", [5432, 80, 80], 0)
    assert table is not None
    assert "ip daddr 10.0.2.10 tcp dport { 80, 5432 } tcp flags syn reject with tcp reset" in table
    assert table.startswith(f"table ip {render.FAULT_TABLE}\ndelete table ip {render.FAULT_TABLE}\n")
    later = render.render_fault_nft(image("refuse", 30.0), "10.0.2.10", [80], 1031)
    assert later is not None and "tcp flags syn meta time >= 1031 reject with tcp reset" in later
    assert render.render_fault_nft(image("reset"), "10.0.2.10", [80], 0) is None
