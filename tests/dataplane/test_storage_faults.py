"""Storage faults as an operator meets them (root: real tmpfs mounts): a read-only directory and a full disk
refuse a run before anything changes; a disk that fills during a run stops it at a step boundary (never called
corruption), and `lbswap resume` finishes once space is freed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbswap.clouds import fake

pytestmark = pytest.mark.dataplane
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "mnt"
    where.mkdir()
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _mount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


def _lbswap(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lbswap", "--backend", f"fake:{tmp_path / 'cloud.json'}", *args]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state")}


def _cloud(tmp_path: Path, n: int, latency: float) -> dict:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, n)
    fake.FakeCloud(path).publish_image("amphora-new")
    fake.set_faults(path, latency=latency)
    return fake.FakeCloud(path).snapshot_state()


@pytest.mark.parametrize("options", ["size=20m,ro", "size=1m"])
def test_an_unusable_journal_disk_refuses_the_run_before_any_change(tmp_path: Path, tmpfs: Path, options) -> None:
    before = _cloud(tmp_path, 3, 0.0)
    _mount(tmpfs, options)
    if "ro" not in options:  # fill the small disk
        subprocess.run(["dd", "if=/dev/zero", f"of={tmpfs / 'filler'}", "bs=64k"], capture_output=True, check=False)
    run = subprocess.run(
        _lbswap(tmp_path, "--journal", str(tmpfs / "j.sqlite"), "run", "--all", "--yes", "--allow-downtime"),
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lbswap: error: journal "), lines
    assert "corrupt" not in run.stderr
    assert fake.FakeCloud(tmp_path / "cloud.json").snapshot_state()["lbs"] == before["lbs"]


def test_a_disk_that_fills_during_a_run_stops_it_and_resume_finishes(tmp_path: Path, tmpfs: Path) -> None:
    _cloud(tmp_path, 20, 0.1)
    _mount(tmpfs, "size=10m")
    journal = ["--journal", str(tmpfs / "j.sqlite")]
    run = subprocess.Popen(
        _lbswap(tmp_path, *journal, "run", "--all", "--yes", "--parallel", "4", "--allow-downtime"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    assert run.stderr is not None
    for line in run.stderr:  # fill the disk once swaps are under way
        if "swap running" in line:
            break
    time.sleep(0.5)  # real processes: let a few steps go by before the disk fills
    subprocess.run(["dd", "if=/dev/zero", f"of={tmpfs / 'filler'}", "bs=64k"], capture_output=True, check=False)
    rest = run.stderr.read()
    run.stderr.close()
    assert run.wait(timeout=120) == 1, rest
    last = rest.strip().splitlines()[-1]
    assert "a write failed" in last and "lbswap resume" in last and "corrupt" not in rest, last
    (tmpfs / "filler").unlink()
    resumed = subprocess.run(
        _lbswap(tmp_path, *journal, "resume", "-f", "json"), capture_output=True, text=True, env=_env(tmp_path)
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    status = subprocess.run(
        _lbswap(tmp_path, *journal, "status", "-f", "json"), capture_output=True, text=True, env=_env(tmp_path)
    )
    (campaign,) = json.loads(status.stdout)
    assert {s["state"] for s in campaign["swaps"]} == {"done"}
    state = fake.FakeCloud(tmp_path / "cloud.json").snapshot_state()
    ports = {
        p for lb in state["lbs"].values() for p in [lb["vip_port_id"], *(v["port_id"] for v in lb["additional_vips"])]
    }
    assert all(f["port_id"] in ports for f in state["fips"].values() if f["port_id"]), "a floating IP points nowhere"
