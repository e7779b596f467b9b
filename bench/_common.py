"""What the fake-backend benchmarks share: a fleet seeded on the simulator, a Cloud wrapper that counts API
calls and measures the simulator's own CPU apart, peak RSS and the machine's load average.

Imported by the scripts of bench/ (run as ``python bench/NAME.py``: bench/ is on the path).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

from lbswap.clouds.fake import FakeCloud, seed_sample, set_faults

NEW_IMAGE = "amphora-new"


class Timed:
    """Wraps a Cloud, counting calls and the CPU spent inside them (``cpu``, seconds; the simulator's).

    CPU is the calling thread's own (``time.thread_time``), so calls made at once by a campaign's parallel
    swaps are each counted once and the other threads' work is not: the process's CPU minus ``cpu`` is
    lbswap's own (engine, journal, planning). The simulated clock lives in the simulator's state file, so the
    CPU of ``clock.now()``/``clock.sleep()`` is the simulator's too (not counted as API calls)."""

    def __init__(self, inner: Any, *, owner: Timed | None = None) -> None:
        self._inner = inner
        self._owner = owner
        self.calls = 0
        self.cpu = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name == "clock" and self._owner is None:
            return Timed(attr, owner=self)
        if not callable(attr) or name in ("spec",):
            return attr
        counter = self._owner or self
        counted = self._owner is None

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return attr(*args, **kwargs)
            finally:
                spent = time.thread_time() - start
                counter.calls += counted  # under the GIL; a lost update would only miscount by one
                counter.cpu += spent

        return timed

    def reset(self) -> None:
        self.calls, self.cpu = 0, 0.0


class Meter:
    """Wall time, process CPU and the simulator's CPU over a block: ``with Meter(cloud) as m: ...``, then
    ``m.wall``, ``m.cpu`` (whole process), ``m.sim`` (inside the cloud), ``m.own`` (the rest), ``m.calls``."""

    def __init__(self, cloud: Timed) -> None:
        self.cloud = cloud
        self.wall = self.cpu = self.sim = self.own = 0.0
        self.calls = 0

    def __enter__(self) -> Meter:
        self.cloud.reset()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.sim, self.calls = self.cloud.cpu, self.cloud.calls
        self.own = self.cpu - self.sim


def seed_fleet(path: Path, n: int, *, latency: float, seed: int = 1) -> tuple[FakeCloud, list[str]]:
    """A simulated cloud of ``n`` varied load balancers on an old image, a newer image published, changes
    settling ``latency`` simulated seconds later (an amphora boot); returns it opened, and the ids."""
    ids = seed_sample(str(path), n, seed=seed)
    set_faults(str(path), latency=latency)
    cloud = FakeCloud(str(path))
    cloud.publish_image(NEW_IMAGE, ("amphora",))
    return cloud, ids


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
