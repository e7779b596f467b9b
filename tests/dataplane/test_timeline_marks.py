"""The demo's timeline draws a "clone served" mark per floating IP (tests/lab/test_demo_settle.py tests the marks).
Here, in tier 3, because drawing needs matplotlib, the `lab` extra that scripts/setup-dataplane.sh installs and
tier 1 does not (tier 1 proves lbswap runs without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbswap.lab.demo import settle_marks
from lbswap.lab.probe import Attempt
from lbswap.lab.timeline import write_timeline
from tests.lab.test_demo_settle import SWAP

pytestmark = pytest.mark.dataplane


def test_the_timeline_draws_a_clone_served_mark(tmp_path: Path) -> None:
    attempts = [Attempt(target="web", t=100.0 + i / 10, ok=True, latency_ms=2.0) for i in range(20)]
    panel = {"target": "web", "title": "web", "t0": 99.0, "marks": [("flip", "done", 100.0), *settle_marks(SWAP)]}
    png = write_timeline(tmp_path / "t.png", [panel], attempts, [], title="demo")
    assert png.stat().st_size > 1000
