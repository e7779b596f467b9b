"""Tier 3: a bad amphora image against real packets. Each fault kind is caught by the verify before the flip
(0 failed new connections through the floating IP, no temporary floating IP left); a fault that shows only
after the flip (``--fault-after``) is caught by the watch and flipped back, and what it cost is reported."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud
from lbswap.journal import Journal
from lbswap.lab.probe import ProbeProcess, ProbeResult, Target, summarize
from lbswap.lab.shapes import seed
from lbswap.model import MARKER_TEMP_FIP
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import CampaignResult, Event, SwapOptions, run_campaign

pytestmark = pytest.mark.dataplane

SRC = Path(__file__).resolve().parents[2] / "src"

OPTIONS = SwapOptions(
    drain_timeout=10.0,
    stats_interval=1.0,
    ready_timeout=60.0,
    poll_initial=0.2,
    poll_max=1.0,
    verify_timeout=2.0,
    verify_settle=2.0,
    watch=5.0,
    watch_interval=0.5,
)


def _swap_under_probe(
    cloud: LocalCloud, tmp_path: Path, options: SwapOptions, events: list[Event], *, fault: str, fault_after: float = 0
) -> tuple[dict, CampaignResult, ProbeResult]:
    """A source on the good image, then the bad image published, then the swap under the probe."""
    (info,) = seed(cloud, [("web", "SINGLE", "HTTP", 80)]).values()
    cloud.publish_image(f"amphora-{fault}", ["amphora"], fault=fault, fault_after=fault_after)
    return info, *_run(cloud, tmp_path, info, options, events)


def _run(
    cloud: LocalCloud, tmp_path: Path, info: dict, options: SwapOptions, events: list[Event]
) -> tuple[CampaignResult, ProbeResult]:
    probe = ProbeProcess(
        f"{cloud.prefix}-client", [Target("web", info["fip"], 80)], tmp_path / "probe", long_lived=5, stream_seconds=6
    )
    journal = Journal(tmp_path / "journal.sqlite")
    probe.start()
    try:
        plans = make_plans(cloud, [info["id"]], PlanOptions(strategy="fip-swap"))
        result = run_campaign(cloud, journal, plans, options, on_event=events.append)
    finally:
        journal.close()
        probed = probe.stop()
    return result, probed


def _source_serves_alone(cloud: LocalCloud, info: dict) -> None:
    assert [lb.id for lb in cloud.list_load_balancers()] == [info["id"]]  # the clone is gone, the source stays
    assert cloud.list_floating_ips(tag=MARKER_TEMP_FIP) == []
    (fip,) = cloud.list_floating_ips(port_id=info["port_id"])
    assert fip.floating_ip_address == info["fip"]


@pytest.mark.parametrize("fault", ["refuse", "http-503", "reset", "stall"])
def test_each_fault_is_caught_by_the_verify_before_the_flip(cloud: LocalCloud, tmp_path: Path, fault: str) -> None:
    events: list[Event] = []
    info, result, probed = _swap_under_probe(cloud, tmp_path, OPTIONS, events, fault=fault)
    swap = result.swaps[0]
    assert swap.state == "rolled_back", swap.error
    assert swap.verify is not None and swap.verify["outcome"] == "failed", swap.verify
    assert swap.error is not None and "verify: listener HTTP:80" in swap.error
    assert not [e for e in events if e.step == "flip" and e.status == "start"]  # never flipped
    summary = summarize(probed.attempts, probed.long_lived)
    assert summary.attempts >= 200
    assert summary.failed == 0, [a for a in probed.attempts if not a.ok][:5]
    assert summary.long_lived_cut == 0
    _source_serves_alone(cloud, info)


def test_a_fault_after_the_flip_is_caught_by_the_watch_and_flipped_back(
    cloud: LocalCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the clone starts, is verified and flipped within a few seconds; its fault shows 12 s after it started
    events: list[Event] = []
    options = dataclasses.replace(OPTIONS, watch=40.0)
    info, result, probed = _swap_under_probe(cloud, tmp_path, options, events, fault="http-503", fault_after=12.0)
    swap = result.swaps[0]
    assert swap.verify is not None and swap.verify["outcome"] == "passed", swap.verify
    assert swap.state == "rolled_back", swap.error
    assert swap.watch is not None and swap.watch["outcome"] == "tripped", swap.watch
    assert "status 503" in swap.watch["reason"]
    assert [f.get("back", False) for f in swap.flips] == [False, True]
    _source_serves_alone(cloud, info)
    summary = summarize(probed.attempts, probed.long_lived)
    back = max(f["at"] for f in swap.flips)
    after_back = [a for a in probed.attempts if a.t > back + 0.05]
    assert after_back and all(a.ok for a in after_back)  # the source serves again
    with capsys.disabled():  # reported, not asserted: what the fault cost before the watch flipped back
        print(
            f"\nwatch tripped after {swap.watch['after_seconds']} s: {summary.failed} of {summary.attempts} new "
            f"connections failed, {summary.long_lived_cut} long-lived stream(s) cut"
        )


def test_killed_during_verify_then_resumed_leaves_no_temporary_floating_ip(cloud: LocalCloud, tmp_path: Path) -> None:
    (info,) = seed(cloud, [("web", "SINGLE", "HTTP", 80)]).values()
    cloud.publish_image("amphora-new", ["amphora"], template="v2")
    env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state")}
    lbswap = [sys.executable, "-m", "lbswap", "--backend", cloud.spec(), "--journal", str(tmp_path / "j.sqlite")]
    run = subprocess.Popen(
        [*lbswap, "run", "--lb", "web", "--strategy", "fip-swap", "--drain-timeout", "5", "--watch", "0", "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not cloud.list_floating_ips(tag=MARKER_TEMP_FIP):  # the verify is probing through it
            assert run.poll() is None, "lbswap finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert cloud.list_floating_ips(tag=MARKER_TEMP_FIP)  # the kill left it behind
    resumed = subprocess.run([*lbswap, "resume", "-f", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    (campaign,) = json.loads(resumed.stdout)
    assert campaign["swaps"][0]["state"] == "done", campaign["swaps"][0]
    assert campaign["swaps"][0]["verify"]["outcome"] == "passed"
    assert cloud.list_floating_ips(tag=MARKER_TEMP_FIP) == []
    (only,) = cloud.list_load_balancers()
    assert only.id != info["id"]  # the clone serves, the source is retired
    assert [f.floating_ip_address for f in cloud.list_floating_ips(port_id=only.vip_port_id)] == [info["fip"]]
