"""Tier 3: `lbswap local down` and `lbswap demo` return only once nothing of their cloud remains: no process
(also none exited and not yet reaped), no namespace, no link, no nftables table. Checked at once, no sleep."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud, apply, procs
from lbswap.clouds.local import state as st
from lbswap.errors import CloudError
from lbswap.lab.shapes import lb_body, seed
from tests.dataplane.conftest import down_and_check, footprint, leftovers

pytestmark = pytest.mark.dataplane

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}


def _in_flight(local: LocalCloud) -> None:
    """A failover and two creates under way: workers starting, plugging namespaces, starting haproxy."""
    lbs = seed(local, [("one", "SINGLE", "HTTP", 80), ("pair", "ACTIVE_STANDBY", "TCP", 5432)])
    local.failover_load_balancer(lbs["pair"]["id"])
    local.create_load_balancer(lb_body("new-single", "SINGLE", "HTTP", 80))
    local.create_load_balancer(lb_body("new-pair", "ACTIVE_STANDBY", "HTTP", 80))


@pytest.mark.parametrize("how", ["in-process", "cli"])
def test_down_while_operations_are_in_flight(tmp_path: Path, how: str) -> None:
    """The leak of a fresh clone: a worker that had not recorded its pid when `down` read the state went on to
    plug an amphora namespace after `down` returned."""
    local = LocalCloud(str(tmp_path / "cloud"))
    try:
        local.up(boot_seconds=0.2)
        _in_flight(local)
        seen = footprint(local.prefix, local.directory)
        assert len(seen.procs) >= 2 + 3  # members, haproxy of `one` and `pair`, keepalived
        if how == "cli":
            cmd = [sys.executable, "-m", "lbswap", "--backend", local.spec(), "local", "down", "-f", "json"]
            done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        else:
            local.down()
        assert leftovers(footprint(local.prefix, local.directory, seen)) == []
    finally:
        local.down()


def test_down_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    local = LocalCloud(str(tmp_path / "cloud"))
    try:
        local.up(boot_seconds=0.2)
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
        apply.spawn_detached([sys.executable, "-c", stubborn], ns=f"{local.prefix}-router")
        down_and_check(local)
    finally:
        local.down()


def test_down_says_what_it_could_not_stop_and_keeps_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalCloud(str(tmp_path / "cloud"))
    try:
        local.up(boot_seconds=0.2)
        member = next(p for p in procs.scan() if "lbswap.clouds.local.member" in p.argv and p.netns is not None)
        monkeypatch.setattr(procs, "stop", lambda *a, **k: procs.Stopped([member], []))
        with pytest.raises(CloudError, match=rf"could not stop {member.comm} {member.pid}$"):
            local.down()
        assert local.files.exists()  # another `down` retries
        assert f"{local.prefix}-router" in apply.list_namespaces(local.prefix)  # kept while a process runs in it
        with pytest.raises(CloudError, match="being taken down"):
            local.create_load_balancer(lb_body("late", "SINGLE", "HTTP", 80))  # the fence holds
        monkeypatch.undo()
        down_and_check(local)
    finally:
        local.down()


def test_identity_is_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert LocalCloud(str(tmp_path / "link")).identity() == f"local:{os.path.realpath(tmp_path / 'real')}"


def test_demo_leaves_nothing_behind(tmp_path: Path) -> None:
    """`lbswap demo` as an operator runs it: right when it returns, nothing of its cloud is left (it used to
    return while its 8 haproxy and 8 keepalived were still in the process list)."""
    root = tmp_path / "demo"
    cloud_dir = (root / "cloud").resolve()
    seen = None
    stop = threading.Event()

    def sample() -> None:  # gather the demo's processes and namespaces while it runs
        nonlocal seen
        while not stop.wait(0.5):
            try:
                seen = footprint(st.lab_prefix(cloud_dir), cloud_dir, seen)
            except (OSError, ValueError, IndexError):  # a file read while being written: sample again
                continue

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        cmd = [sys.executable, "-m", "lbswap", "demo", "--state-dir", str(root), "--rate", "20"]
        done = subprocess.run([*cmd, "--boot-seconds", "0", "-f", "json"], env=ENV, capture_output=True, text=True)
    finally:
        stop.set()
        sampler.join()
    assert done.returncode == 0, done.stderr
    assert seen is not None
    assert len(seen.netns) >= 2 + 2 + 8 and sum("haproxy" in p for p in seen.procs.values()) >= 8
    assert leftovers(seen) == []
