"""Tier 3 fixtures: a real local cloud per test (namespaces, haproxy, nftables), always taken down after.

Outside CI a missing prerequisite (root, a tool) skips; with CI=true it fails, so CI never skips a tier."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud

TOOLS = ("ip", "nft", "haproxy", "keepalived", "conntrack", "arping", "setsid", "ss")


def _missing() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


@pytest.fixture(autouse=True)
def _prerequisites() -> None:
    missing = _missing()
    if missing:
        message = f"tier 3 needs {', '.join(missing)}: run scripts/setup-dataplane.sh as root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Footprint:
    """What a local cloud had running, gathered while it was up: its namespaces (by inode), its processes
    (by pid and start time, so a reused pid is not mistaken for one of them) and its links' names."""

    prefix: str
    state_dir: Path
    netns: set[tuple[int, int]] = field(default_factory=set)
    procs: dict[tuple[int, int], str] = field(default_factory=dict)
    links: set[str] = field(default_factory=set)


def _processes() -> Iterator[tuple[tuple[int, int], str, tuple[int, int] | None, list[str]]]:
    """(pid, start time), name, network namespace, argv of every process, zombies included."""
    with os.scandir("/proc") as entries:
        found = [entry for entry in entries if entry.name.isdigit()]
    for entry in found:
        try:
            stat = Path(entry.path, "stat").read_text()
            argv = Path(entry.path, "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        try:
            ns = os.stat(Path(entry.path, "ns", "net"))
            netns: tuple[int, int] | None = (ns.st_dev, ns.st_ino)
        except OSError:
            netns = None
        start = int(stat[stat.rindex(")") + 2 :].split()[19])
        yield (int(entry.name), start), stat[stat.index("(") + 1 : stat.rindex(")")], netns, argv


def _namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix + "-")]


def footprint(prefix: str, state_dir: Path, into: Footprint | None = None) -> Footprint:
    """Add what the cloud runs now to ``into``: call it while the cloud is up, as often as wanted."""
    seen = into or Footprint(prefix, state_dir)
    for ns in _namespaces(prefix):
        with contextlib.suppress(OSError):
            info = os.stat(Path("/run/netns", ns))
            seen.netns.add((info.st_dev, info.st_ino))
        if ns == f"{prefix}-router":
            out = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True).stdout
            seen.links |= {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()} - {"lo"}
    pids = set()
    for pidfile in Path("/run/lbswap", prefix).glob("*pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a pid file being written reads empty
            pids.add(int(pidfile.read_text().split()[0]))
    for key, name, netns, argv in _processes():
        if netns in seen.netns or str(state_dir) in argv or key[0] in pids:
            seen.procs[key] = f"{name} {key[0]}"
    return seen


def leftovers(seen: Footprint) -> list[str]:
    """Everything of the cloud still there, looked at once (no waiting): processes (also exited ones nobody
    reaped yet), namespaces, links, the nftables table, the run directory."""
    found = [f"namespace {ns}" for ns in _namespaces(seen.prefix)]
    for key, name, netns, argv in _processes():
        if key in seen.procs:
            found.append(f"process {seen.procs[key]} ({name})")
        elif netns is not None and netns in seen.netns:
            found.append(f"process {name} {key[0]} in a namespace of the cloud")
        elif str(seen.state_dir) in argv:
            found.append(f"process {name} {key[0]} of {seen.state_dir}")
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {n}" for n in {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()} & seen.links]
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    found += ["nftables table lbswap_fip"] if "lbswap_fip" in ruleset else []
    found += [f"directory /run/lbswap/{seen.prefix}"] if Path("/run/lbswap", seen.prefix).exists() else []
    return found


def down_and_check(local: LocalCloud) -> None:
    """``down``, then nothing of the cloud may remain the moment it returns."""
    seen = footprint(local.prefix, local.directory)
    local.down()
    assert leftovers(seen) == []
    assert not local.files.exists()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    local = LocalCloud(str(tmp_path / "cloud"))
    try:
        local.up(boot_seconds=1.0)
        yield local
    finally:
        down_and_check(local)
