"""Tier 3: the post-flip check on real packets. The local backend names the load balancer that served a probe
through a floating IP by the address the member saw (the serving amphora's), before and after the flip, for an
HTTP listener on SINGLE and a TCP listener on ACTIVE_STANDBY; the fip-swap records per floating IP when the API
answered and when a new connection through it reached the clone, a small delay later (the nftables move is
one transaction inside the PUT: what remains is the probe's own time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud
from lbswap.journal import Journal
from lbswap.lab.shapes import seed
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import SwapOptions, run_campaign

pytestmark = pytest.mark.dataplane

OPTIONS = SwapOptions(
    drain_timeout=5.0,
    stats_interval=1.0,
    ready_timeout=60.0,
    delete_timeout=60.0,
    poll_initial=0.2,
    poll_max=1.0,
    verify_timeout=2.0,
    verify_settle=2.0,
    watch=0.0,
)
SHAPES = [("web", "SINGLE", "HTTP", 80), ("db", "ACTIVE_STANDBY", "TCP", 5432)]


def test_fip_swap_records_when_the_clone_served_after_the_api_answered(cloud: LocalCloud, tmp_path: Path) -> None:
    lbs = seed(cloud, SHAPES)
    for info in lbs.values():  # before: the source's amphora serves, and the backend says so
        before = cloud.probe_listener(info["fip"], info["port"], info["protocol"], timeout=2.0)
        assert before.ok, before
        assert before.served_by == info["id"]
    cloud.publish_image("amphora-settle", ["amphora"])
    plans = make_plans(cloud, [info["id"] for info in lbs.values()], PlanOptions(strategy="fip-swap"))
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        result = run_campaign(cloud, journal, plans, OPTIONS, parallel=2)
    finally:
        journal.close()
    swaps = {s.name: s for s in result.swaps}
    for name, info in lbs.items():
        swap = swaps[name]
        assert swap.state == "done", swap.error
        (settle,) = swap.settle or []
        assert settle["floating_ip_address"] == info["fip"]
        assert settle["outcome"] == "served by the clone", settle
        (flip,) = [f for f in swap.flips if not f.get("back")]
        assert settle["api_answered_at"] == flip["at"]
        assert settle["clone_served_at"] > settle["api_answered_at"]
        # when the probe's connection opened (its process started in the client namespace first), not a lag
        assert 0 < settle["delay_seconds"] < 3.0, settle
        assert settle["probes"] == 1  # the local data plane moved inside the PUT: the first probe met the clone
        assert settle["source_served_until"] is None  # so no probe met the source: the delay is the probe's start
        # the drain started only after the clone served
        assert swap.steps["drain"]["started"] >= settle["clone_served_at"]
        after = cloud.probe_listener(info["fip"], info["port"], info["protocol"], timeout=2.0)
        assert after.ok, after
        assert after.served_by == swap.clone_id
