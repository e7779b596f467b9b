"""A campaign's lease (I9: one driver per campaign): who holds it, and whether that holder still lives. The
journal's table of leases and its fencing are in journal.py."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

#: A lease whose holder runs on another host is taken over after this long without a heartbeat (seconds).
LEASE_TIMEOUT = float(os.environ.get("LBSWAP_LEASE_TIMEOUT", "60"))
HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class Holder:
    """A process that may hold a lease: its host, pid and start time (a pid reused later is another process)."""

    host: str
    pid: int
    proc_start: str

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), proc_start(os.getpid()))

    def alive(self) -> bool:
        """Same host only: whether this very process still runs."""
        return self.proc_start == proc_start(self.pid) != ""


@dataclass(frozen=True)
class Lease:
    campaign_id: str
    holder: Holder
    taken: float
    heartbeat: float
    token: int

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.taken))
        return f"host {self.holder.host} pid {self.holder.pid} since {since}"


def proc_start(pid: int) -> str:
    """The process's start time in clock ticks since boot, with the boot id ("" when no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
    return boot + ":" + stat.rsplit(")", 1)[1].split()[19]


def holder_alive(lease: Lease, now: float) -> bool:
    """On this host: the holding process still runs; on another: it sent a heartbeat within ``LEASE_TIMEOUT``."""
    if lease.holder.host == socket.gethostname():
        return lease.holder.alive()
    return now - lease.heartbeat < LEASE_TIMEOUT
