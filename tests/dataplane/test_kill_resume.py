"""Tier 3: lbswap killed (SIGKILL) in the middle of a fip-swap, then `lbswap resume`: the swap ends done or
rolled back, nothing is orphaned, and traffic through the floating IP flows throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud
from lbswap.lab.probe import ProbeProcess, Target, summarize
from lbswap.lab.shapes import seed

pytestmark = pytest.mark.dataplane

SRC = Path(__file__).resolve().parents[2] / "src"


def _clone_exists(cloud: LocalCloud, fip_id: str, revision: int) -> bool:
    return any(lb.clone_of for lb in cloud.list_load_balancers())


def _flipped(cloud: LocalCloud, fip_id: str, revision: int) -> bool:
    return cloud.get_floating_ip(fip_id).revision_number > revision


@pytest.mark.parametrize("kill_when", [_clone_exists, _flipped], ids=["clone-created", "flipped"])
def test_killed_mid_swap_then_resumed(
    cloud: LocalCloud, tmp_path: Path, kill_when: Callable[[LocalCloud, str, int], bool]
) -> None:
    lbs = seed(cloud, [("web", "SINGLE", "HTTP", 80)])
    cloud.publish_image("amphora-new", ["amphora"], template="v2")
    fip = cloud.list_floating_ips()[0]
    env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state")}
    lbswap = [sys.executable, "-m", "lbswap", "--backend", cloud.spec(), "--journal", str(tmp_path / "j.sqlite")]
    probe = ProbeProcess(
        f"{cloud.prefix}-client",
        [Target("web", lbs["web"]["fip"], 80)],
        tmp_path / "probe",
        long_lived=5,
        stream_seconds=6,
    )
    probe.start()
    try:
        run = subprocess.Popen(
            [*lbswap, "run", "--lb", "web", "--strategy", "fip-swap", "--drain-timeout", "20", "--yes"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not kill_when(cloud, fip.id, fip.revision_number):
            assert run.poll() is None, "lbswap finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
        run.wait()
        resumed = subprocess.run(
            [*lbswap, "resume", "-f", "json"], env=env, capture_output=True, text=True, timeout=120
        )
        time.sleep(0.5)
    finally:
        probed = probe.stop()
    assert resumed.returncode in (0, 1), resumed.stderr
    states = [swap["state"] for campaign in json.loads(resumed.stdout) for swap in campaign["swaps"]]
    assert states and all(s in ("done", "rolled_back") for s in states), resumed.stdout
    summary = summarize(probed.attempts, probed.long_lived)
    assert summary.failed == 0, [a for a in probed.attempts if not a.ok][:5]
    assert all(a.ok for a in probed.attempts[-50:])  # flowing at the end
    remaining = cloud.list_load_balancers()
    assert len(remaining) == 1 and remaining[0].provisioning_status == "ACTIVE"  # nothing orphaned (I4)
    assert cloud.get_floating_ip(fip.id).port_id == remaining[0].vip_port_id  # I1
