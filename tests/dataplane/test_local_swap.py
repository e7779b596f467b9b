"""Tier 3: the local backend with real packets. A fip-swap under load drops no new connection and cuts no
long-lived one that ends within the drain deadline; the served image changes at the flip; `down` leaves
nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud, apply
from lbswap.journal import Journal
from lbswap.lab.probe import ProbeProcess, Target, summarize, with_images
from lbswap.lab.shapes import seed
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import Event, SwapOptions, run_campaign
from tests.dataplane.conftest import footprint, leftovers

pytestmark = pytest.mark.dataplane

OPTIONS = SwapOptions(drain_timeout=30.0, stats_interval=1.0, ready_timeout=60.0, poll_initial=0.2, poll_max=1.0)


@pytest.mark.parametrize(("topology", "protocol", "port"), [("SINGLE", "HTTP", 80), ("ACTIVE_STANDBY", "TCP", 5432)])
def test_fip_swap_under_load_drops_nothing(
    cloud: LocalCloud, tmp_path: Path, topology: str, protocol: str, port: int
) -> None:
    lbs = seed(cloud, [("web", topology, protocol, port)])
    cloud.publish_image("amphora-new", ["amphora"], template="v2")
    info = lbs["web"]
    probe = ProbeProcess(
        f"{cloud.prefix}-client",
        [Target("web", info["fip"], port)],
        tmp_path / "probe",
        long_lived=10,
        stream_seconds=8,
    )
    events: list[Event] = []
    journal = Journal(tmp_path / "journal.sqlite")
    probe.start()
    try:
        plans = make_plans(cloud, [info["id"]], PlanOptions(strategy="fip-swap"))
        result = run_campaign(cloud, journal, plans, OPTIONS, on_event=events.append)
    finally:
        journal.close()
        probed = probe.stop()
    assert result.swaps[0].state == "done", result.swaps[0].error
    peers = {a["address"]: a["image"] for a in cloud.amphora_log()}  # TCP: the image by the amphora's address
    attempts = with_images(probed.attempts, peers)
    summary = summarize(attempts, probed.long_lived)
    assert summary.attempts >= 1000
    assert summary.failed == 0, [a for a in probed.attempts if not a.ok][:5]
    assert summary.long_lived_total == 10
    assert summary.long_lived_cut == 0, probed.long_lived
    # the served image changes at the flip: old before it, new after it
    assert summary.images == ("amphora-2026-10", "amphora-new")
    flip = next(e for e in events if e.step == "flip" and e.status == "start").at
    flipped = next(e for e in events if e.step == "flip" and e.status == "done").at
    assert all(a.image == "amphora-2026-10" for a in attempts if a.t + a.latency_ms / 1000 < flip)
    assert all(a.image == "amphora-new" for a in attempts if a.t > flipped + 0.05)
    assert flip - 0.05 <= summary.first_served["amphora-new"] <= flipped + 0.05
    assert [lb.name for lb in cloud.list_load_balancers()] == ["web"]  # the source is retired, the clone serves


def test_down_leaves_nothing_behind(tmp_path: Path) -> None:
    local = LocalCloud(str(tmp_path / "cloud"))
    try:
        local.up(boot_seconds=0.5)
        seed(local, [("one", "SINGLE", "HTTP", 80), ("pair", "ACTIVE_STANDBY", "TCP", 5432)])
        assert len(apply.list_namespaces(local.prefix)) == 2 + 2 + 3  # router, client, 2 members, 3 amphorae
        seen = footprint(local.prefix, local.directory)
        assert {"ext0", "br-tenant", "m0", "m1"} <= seen.links
    finally:
        local.down()
    assert leftovers(seen) == []
    assert not local.files.exists()
    assert local.down()["removed_namespaces"] == []  # idempotent
