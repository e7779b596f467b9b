"""Fleet benchmark on the fake backend: API calls per swap and lbswap's own CPU per swap.

200 load balancers, 30 s simulated provisioning on the injected clock (no real sleeping). The simulator's
own CPU is measured around every Cloud call and subtracted, so the number is lbswap's (engine, journal,
planning). Goals (issue 2): <= 40 API calls per swap including polling, <= 50 ms CPU per swap.

    .venv/bin/python bench/bench_fake_fleet.py [--lbs 200] [--parallel 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import Meter, Timed, load_average, seed_fleet

from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import SwapOptions, run_campaign


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lbs", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw, ids = seed_fleet(Path(tmp) / "cloud.db", args.lbs, latency=30.0)
        cloud = Timed(raw)
        plans = [p for p in make_plans(cloud, ids, PlanOptions(strategy="auto", allow_downtime=True)) if not p.blocking]
        plan_calls = cloud.calls
        journal = Journal(Path(tmp) / "journal.sqlite")
        with Meter(cloud) as run:
            result = run_campaign(cloud, journal, plans, SwapOptions(drain_timeout=120.0), parallel=args.parallel)
        done = sum(1 for s in result.swaps if s.state == "done")
        n = max(1, len(plans))
        by_strategy: dict[str, int] = {}
        for plan in plans:
            by_strategy[plan.strategy] = by_strategy.get(plan.strategy, 0) + 1
        print(f"load balancers seeded        {args.lbs}, planned {len(plans)} {by_strategy}, done {done}")
        print(f"planning API calls per LB    {plan_calls / n:.1f}")
        calls, cpu_ms = run.calls / n, run.own / n * 1000
        print(f"API calls per swap           {calls:.1f}   (goal <= 40)   ratio to goal {calls / 40:.2f}")
        print(f"lbswap CPU per swap          {cpu_ms:.1f} ms (goal <= 50 ms) ratio to goal {cpu_ms / 50:.2f}")
        print(f"simulator CPU per swap       {run.sim / n * 1000:.1f} ms (not counted above)")
        print(f"wall time                    {run.wall:.1f} s for {n} swaps, parallel={args.parallel}")
        print(load_average())


if __name__ == "__main__":
    main()
