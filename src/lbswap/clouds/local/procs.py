"""This cloud's processes, found by pid in /proc (by network namespace, process group or state directory,
never by name across the host) and stopped with bounded waits: SIGTERM, a grace period, SIGKILL, the reap."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
POLL = 0.02

NetnsId = tuple[int, int]  # (st_dev, st_ino) of a network namespace


@dataclass(frozen=True)
class Proc:
    """One process as /proc shows it; ``(pid, start)`` names it even if the pid is later reused."""

    pid: int
    start: int  # clock ticks after boot (field 22 of /proc/PID/stat)
    ppid: int
    pgrp: int
    state: str
    comm: str
    netns: NetnsId | None  # None once it is a zombie: it holds no namespace any more
    argv: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    def describe(self) -> str:
        return f"{self.comm} {self.pid}"


def netns_id(path: str | Path) -> NetnsId | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def read(pid: int) -> Proc | None:
    """The process ``pid``, or None when it is gone (reaped)."""
    base = PROC / str(pid)
    try:
        stat = (base / "stat").read_text()
        argv = (base / "cmdline").read_bytes()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return Proc(
        pid=pid,
        start=int(fields[19]),
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        state=fields[0],
        comm=comm,
        netns=netns_id(base / "ns" / "net"),
        argv=tuple(a.decode(errors="replace") for a in argv.split(b"\0") if a),
    )


def scan() -> Iterator[Proc]:
    """Every process on the host except this one (the one doing the teardown is never its own target)."""
    own = os.getpid()
    with os.scandir(PROC) as entries:
        pids = [int(e.name) for e in entries if e.name.isdigit() and int(e.name) != own]
    for pid in pids:
        proc = read(pid)
        if proc is not None:
            yield proc


def exists(key: tuple[int, int]) -> bool:
    proc = read(key[0])
    return proc is not None and proc.start == key[1]


def in_netns(namespaces: Collection[NetnsId]) -> Callable[[Proc], bool]:
    return lambda proc: proc.netns is not None and proc.netns in namespaces


def runs_module(module: str, argument: str) -> Callable[[Proc], bool]:
    """A process started as ``python -m module ... argument ...`` (also while still ``setsid``/``nice``)."""
    return lambda proc: proc.state != "Z" and module in proc.argv and argument in proc.argv


@dataclass
class Stopped:
    running: list[Proc]  # still running after SIGKILL and its wait
    signalled: list[tuple[int, int]]  # every process signalled, by (pid, start), to wait for their reap


def stop(wanted: Callable[[Proc], bool], *, grace: float = 2.0, kill_wait: float = 2.0) -> Stopped:
    """Stop every process ``wanted`` picks (re-scanned, so children started meanwhile are caught too) and the
    process groups they lead: SIGTERM, up to ``grace`` s, then SIGKILL, up to ``kill_wait`` s."""
    signalled: dict[tuple[int, int], Proc] = {}
    groups: set[int] = set()

    def targets() -> list[Proc]:
        found = [p for p in scan() if p.state != "Z" and (wanted(p) or p.pgrp in groups)]
        groups.update(p.pid for p in found if p.pgrp == p.pid)
        return found

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        deadline = time.monotonic() + wait
        found = targets()
        while found:
            for proc in found:
                if proc.key not in signalled or sig == signal.SIGKILL:
                    _signal(proc, sig)
                signalled[proc.key] = proc
            if time.monotonic() > deadline:
                break
            time.sleep(POLL)
            found = targets()
        if not found:
            break
    return Stopped(targets(), list(signalled))


def wait_reaped(keys: Collection[tuple[int, int]], timeout: float) -> list[tuple[int, int]]:
    """Wait up to ``timeout`` s until exited processes are reaped by their parents (often pid 1, which may reap
    only every second or two), so that none is left in the process list; returns those still listed."""
    deadline = time.monotonic() + timeout
    while True:
        listed = [key for key in keys if exists(key)]
        if not listed or time.monotonic() > deadline:
            return listed
        _reap_own(listed)
        time.sleep(POLL)


def _signal(proc: Proc, sig: signal.Signals) -> None:
    if exists(proc.key):  # the pid still names the process that was found, not a newcomer
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def _reap_own(keys: Collection[tuple[int, int]]) -> None:
    """A child of this very process (a probe it started, say) is reaped here, or it would stay a zombie."""
    for key in keys:
        proc = read(key[0])
        if proc is not None and proc.start == key[1] and proc.state == "Z" and proc.ppid == os.getpid():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
