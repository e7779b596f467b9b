"""Fleet benchmark on the fake backend: API calls per swap and lbswap's own CPU per swap.

200 load balancers, 30 s simulated provisioning on the injected clock (no real sleeping). The simulator's
own CPU is measured around every Cloud call and subtracted, so the number is lbswap's (engine, journal,
planning). Goals (issue 2): <= 40 API calls per swap including polling, <= 50 ms CPU per swap.

    .venv/bin/python bench/bench_fake_fleet.py [--lbs 200] [--parallel 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from lbswap.clouds.fake import FakeCloud, seed_sample, set_faults
from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import SwapOptions, run_campaign


class Timed:
    """Wraps a Cloud, counting calls and the CPU spent inside them. The simulated clock lives in the
    simulator's state file too, so the CPU of ``clock.now()``/``clock.sleep()`` is the simulator's (not
    counted as API calls)."""

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
            counter.calls += counted
            start = time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                counter.cpu += time.process_time() - start

        return timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lbs", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "cloud.db"
        ids = seed_sample(str(state), args.lbs, seed=1)
        set_faults(str(state), latency=30.0)
        raw = FakeCloud(str(state))
        raw.publish_image("amphora-new", ("amphora",))
        cloud = Timed(raw)
        plans = [p for p in make_plans(cloud, ids, PlanOptions(strategy="auto", allow_downtime=True)) if not p.blocking]
        plan_calls = cloud.calls
        cloud.calls, cloud.cpu = 0, 0.0
        journal = Journal(Path(tmp) / "journal.sqlite")
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = run_campaign(cloud, journal, plans, SwapOptions(drain_timeout=120.0), parallel=args.parallel)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        done = sum(1 for s in result.swaps if s.state == "done")
        n = max(1, len(plans))
        by_strategy: dict[str, int] = {}
        for plan in plans:
            by_strategy[plan.strategy] = by_strategy.get(plan.strategy, 0) + 1
        own = cpu - cloud.cpu
        print(f"load balancers seeded        {args.lbs}, planned {len(plans)} {by_strategy}, done {done}")
        print(f"planning API calls per LB    {plan_calls / n:.1f}")
        calls, cpu_ms = cloud.calls / n, own / n * 1000
        print(f"API calls per swap           {calls:.1f}   (goal <= 40)   ratio to goal {calls / 40:.2f}")
        print(f"lbswap CPU per swap          {cpu_ms:.1f} ms (goal <= 50 ms) ratio to goal {cpu_ms / 50:.2f}")
        print(f"simulator CPU per swap       {cloud.cpu / n * 1000:.1f} ms (not counted above)")
        print(f"wall time                    {wall:.1f} s for {n} swaps, parallel={args.parallel}")


if __name__ == "__main__":
    main()
