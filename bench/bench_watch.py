"""API calls per interval while swaps wait for their clones, at --parallel 1, 10 and 50, on the fake.

Each swap's clone is created at once and turns ACTIVE after ``--latency`` simulated seconds (an amphora boot);
the swaps wait as WaitReady does. Before: each swap polls its own clone (backoff 1 s to 15 s, the poll loop of
SwapOptions' defaults). Now: one StatusWatcher per campaign (one list call by the campaign's tag per 2 s
interval). Printed side by side: calls per interval (mean over the wait, and the most in any one interval),
and the longest delay between a clone turning ACTIVE and its swap noticing. Goal: calls per interval constant
in --parallel, notice delay <= one interval. Simulated time throughout: nothing sleeps for real.

    .venv/bin/python bench/bench_watch.py [--latency 307]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbswap import clone
from lbswap.clouds.fake import FakeCloud, seed_sample, set_faults
from lbswap.clouds.watch import StatusWatcher
from lbswap.model import MARKER_CAMPAIGN

CAMPAIGN = "bench"
INTERVAL = 2.0
PARALLEL = (1, 10, 50)


class SimClock:
    """Simulated time shared by threads that each sleep on their own (the fake's clock would add their sleeps
    up): time jumps to the earliest wake-up once every running thread sleeps. ``run`` starts the threads."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self._cond = threading.Condition()
        self._running = 0
        self._wakes: list[float] = []

    def now(self) -> float:
        return self.cloud.clock.now()

    def sleep(self, seconds: float) -> None:
        with self._cond:
            wake = self.now() + max(seconds, 0.0)
            self._wakes.append(wake)
            self._advance()
            while self.now() < wake:
                self._cond.wait(1.0)
            self._wakes.remove(wake)

    def _advance(self) -> None:
        if self._running and len(self._wakes) == self._running:
            step = min(self._wakes) - self.now()
            if step > 0:
                self.cloud.clock.sleep(step)
            self._cond.notify_all()

    def run(self, targets: list[Callable[[], None]]) -> None:
        def done(target: Callable[[], None]) -> None:
            try:
                target()
            finally:
                with self._cond:
                    self._running -= 1
                    self._advance()

        self._running = len(targets)
        threads = [threading.Thread(target=done, args=(t,)) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class Counting:
    """The fake with the simulated time of every status read recorded."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.at: list[float] = []
        self._lock = threading.Lock()

    @property
    def clock(self) -> Any:
        return self.cloud.clock

    def list_load_balancers(self, **kwargs: Any) -> Any:
        with self._lock:
            self.at.append(self.cloud.clock.now())
        return self.cloud.list_load_balancers(**kwargs)

    def get_load_balancer(self, lb_id: str) -> Any:
        with self._lock:
            self.at.append(self.cloud.clock.now())
        return self.cloud.get_load_balancer(lb_id)


def fresh(base: Path, tmp: Path, latency: float, n: int) -> tuple[FakeCloud, list[str]]:
    path = tmp / f"cloud-{n}-{len(list(tmp.iterdir()))}.sqlite"
    path.write_bytes(base.read_bytes())
    set_faults(path, latency=latency)
    cloud = FakeCloud(path)
    sources = sorted(cloud.list_load_balancers(), key=lambda s: s.name)[:n]
    ids = [
        cloud.create_load_balancer(clone.build_clone_body(cloud.read_graph(s.id), campaign_id=CAMPAIGN)).id
        for s in sources
    ]
    return cloud, ids


def measure(cloud: FakeCloud, ids: list[str], *, shared: bool) -> dict[str, float]:
    """Every clone waited on by a thread of its own, through one shared watcher (now) or a poll loop each
    (before: a watcher without tags per swap, on a clock where the swaps' sleeps overlap as in real time)."""
    counting = Counting(cloud)
    start = cloud.clock.now()
    ready = start + float(cloud.snapshot_state()["latency"])
    noticed: list[float] = []
    lock = threading.Lock()
    sim = SimClock(cloud)
    tags = [MARKER_CAMPAIGN + CAMPAIGN]
    one = StatusWatcher(counting, tags=tags, interval=INTERVAL)  # type: ignore[arg-type]

    def wait(lb_id: str) -> Callable[[], None]:
        def run() -> None:
            watcher = one if shared else StatusWatcher(counting, clock=sim)  # type: ignore[arg-type]
            for summary in watcher.statuses(lb_id, 3600.0):
                if summary.provisioning_status == "ACTIVE":
                    with lock:
                        noticed.append(cloud.clock.now())
                    return

        return run

    sim.run([wait(i) for i in ids])
    end = max(noticed)
    per_interval = collections.Counter(int((at - start) // INTERVAL) for at in counting.at)
    return {
        "mean": len(counting.at) / max((end - start) / INTERVAL, 1.0),
        "peak": float(max(per_interval.values())),
        "delay": max(noticed) - ready,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=307.0, help="simulated seconds until a clone is ACTIVE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        base = tmp / "base.sqlite"
        seed_sample(base, max(PARALLEL))
        rows = []
        for n in PARALLEL:
            before = measure(*fresh(base, tmp, args.latency, n), shared=False)
            now = measure(*fresh(base, tmp, args.latency, n), shared=True)
            rows.append((n, before, now))
    print(f"clones turn ACTIVE after {args.latency:.0f} s (simulated); interval {INTERVAL:.0f} s")
    print("status reads per interval while waiting (mean / most in one interval), longest notice delay")
    print(f"{'parallel':>8}  {'before':>22}  {'now':>22}  goal")
    for n, before, now in rows:
        cells = [f"{m['mean']:5.2f} / {m['peak']:3.0f}, {m['delay']:5.1f} s" for m in (before, now)]
        print(f"{n:>8}  {cells[0]:>22}  {cells[1]:>22}  constant, <= {INTERVAL:.0f} s")


if __name__ == "__main__":
    main()
