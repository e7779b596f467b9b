"""Rehearsal scaling on the fake backend: a campaign over the whole fleet at 100, 1,000 and 10,000 load balancers.

What ``lbswap run --all --parallel 50 --yes`` does, in-process: select every load balancer, plan, run the
campaign with the progress view's plain lines (to /dev/null) as its event sink, write the report. Changes
settle ``--latency`` simulated seconds later on the fake's clock: nothing sleeps for real. Each size runs in a
process of its own (its peak RSS is its own) and prints, side by side: the simulator's CPU per swap and
lbswap's own (the simulator's measured around every Cloud call, per thread, and subtracted), wall time of
planning and of the campaign, and peak RSS. Goal: flat per-swap cost; 10,000 in under 5 minutes of wall time
on 2 cores. Seeding is printed apart (it is the benchmark's setup, not a rehearsal's cost).

    .venv/bin/python bench/bench_rehearsal.py [--sizes 100,1000,10000] [--parallel 50] [--latency 30]
    .venv/bin/python bench/bench_rehearsal.py --sizes 100,1000 --profile /tmp/prof   # cProfile per size
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import Meter, Timed, load_average, peak_rss_mb, seed_fleet

from lbswap.cli.progress import ProgressView
from lbswap.errors import StopSwap
from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans, resolve_selection
from lbswap.report import write_report
from lbswap.workflow.results import campaign_result
from lbswap.workflow.runner import StopRequest, SwapOptions, new_campaign_id, run_campaign

GOAL_WALL = 300.0  # seconds, for 10,000 load balancers


def profile_threads() -> list[cProfile.Profile]:
    """cProfile in this thread and in every thread started from now on (the campaign's swaps and the
    journal's); their stats are merged at the end."""
    profilers = [cProfile.Profile(time.thread_time)]

    def start(*_args: Any) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(start)
    profilers[0].enable()
    return profilers


def one_size(n: int, parallel: int, latency: float, profile: str | None, max_wall: float) -> dict[str, Any]:
    """Seed ``n`` load balancers, then plan and run a campaign over all of them (stopped after ``max_wall``
    seconds, as a signal stops it: the swaps that ended are counted); the measurements."""
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with Meter(Timed(None)) as seeding:
            raw, _ids = seed_fleet(tmp / "cloud.sqlite", n, latency=latency)
        cloud = Timed(raw)
        profilers = profile_threads() if profile else []
        with Meter(cloud) as planning:
            chosen = resolve_selection(cloud, names_or_ids=[], all_=True)  # type: ignore[arg-type]
            options = PlanOptions(strategy="auto", allow_downtime=True, parallel=parallel)
            every = make_plans(cloud, [lb.id for lb in chosen], options)  # type: ignore[arg-type]
        plans = [p for p in every if not p.blocking]
        journal = Journal(tmp / "journal.sqlite")
        stop, campaign_id = StopRequest(), new_campaign_id()
        timer = threading.Timer(max_wall, stop.set, args=(f"--max-wall {max_wall:.0f} s",))
        timer.daemon = True
        timer.start()
        with (
            open(os.devnull, "w") as sink,
            ProgressView(plans, enabled=True, stream=sink) as view,
            Meter(cloud) as running,
        ):
            with contextlib.suppress(StopSwap):  # --max-wall: the swaps that ended are counted
                run_campaign(
                    cloud,  # type: ignore[arg-type]
                    journal,
                    plans,
                    SwapOptions(drain_timeout=120.0),
                    parallel=parallel,
                    on_event=view,
                    stop=stop,
                    campaign_id=campaign_id,
                )
            result = campaign_result(journal, campaign_id)
            write_report(result, tmp / "reports")
        timer.cancel()
        if profilers:
            threading.setprofile(None)  # type: ignore[arg-type]
            profilers[0].disable()
            stats = pstats.Stats(*profilers)
            stats.dump_stats(f"{profile}-{n}.prof")
        strategies: dict[str, int] = {}
        for plan in plans:
            strategies[plan.strategy or "-"] = strategies.get(plan.strategy or "-", 0) + 1
        return {
            "n": n,
            "planned": len(plans),
            "ended": sum(1 for s in result.swaps if s.state not in ("pending", "running")),
            "blocked": len(every) - len(plans),
            "strategies": strategies,
            "done": sum(1 for s in result.swaps if s.state == "done"),
            "not_done": [
                f"{s.state}: {s.error}" for s in result.swaps if s.state not in ("done", "pending", "running")
            ][:3],
            "seed_wall": seeding.wall,
            "plan_wall": planning.wall,
            "plan_sim": planning.sim,
            "plan_own": planning.own,
            "run_wall": running.wall,
            "run_sim": running.sim,
            "run_own": running.own,
            "calls": running.calls,
            "rss": peak_rss_mb(),
            "load": os.getloadavg()[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000", help="fleet sizes, comma-separated")
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--latency", type=float, default=30.0, help="simulated seconds a change takes to settle")
    parser.add_argument("--profile", metavar="PREFIX", help="write cProfile stats of plan+run to PREFIX-N.prof")
    parser.add_argument("--max-wall", type=float, default=3600.0, help="stop a campaign after this many seconds")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size, JSON out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.parallel, args.latency, args.profile, args.max_wall)))
        return
    print(f"parallel {args.parallel}, changes settle after {args.latency:.0f} s simulated; {load_average()}")
    header = (
        f"{'LBs':>6} {'swaps':>6} {'done':>6} {'sim CPU/swap':>12} {'own CPU/swap':>12} {'calls/swap':>10} "
        f"{'plan wall':>9} {'run wall':>9} {'wall/swap':>9} {'peak RSS':>9} {'load':>5}  seed wall"
    )
    print(header)
    for size in (int(s) for s in args.sizes.split(",")):
        child = [sys.executable, __file__, "--one", str(size), "--parallel", str(args.parallel)]
        child += ["--latency", str(args.latency), "--max-wall", str(args.max_wall)]
        child += ["--profile", args.profile] if args.profile else []
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        m = json.loads(out.strip().splitlines()[-1])
        swaps = max(1, m["ended"])  # all planned, unless --max-wall stopped the campaign
        print(
            f"{m['n']:>6} {m['planned']:>6} {m['done']:>6} {m['run_sim'] / swaps * 1000:>9.1f} ms "
            f"{m['run_own'] / swaps * 1000:>9.1f} ms {m['calls'] / swaps:>10.1f} {m['plan_wall']:>8.1f}s "
            f"{m['run_wall']:>8.1f}s {m['run_wall'] / swaps * 1000:>6.1f} ms {m['rss']:>6.0f} MiB {m['load']:>5.2f}  "
            f"{m['seed_wall']:.1f}s",
            flush=True,
        )
        print(
            f"{'':>6} planning: sim {m['plan_sim'] / m['n'] * 1000:.1f} ms and own {m['plan_own'] / m['n'] * 1000:.1f}"
            f" ms CPU per LB; {m['blocked']} blocked; {m['strategies']}; plan+run wall "
            f"{m['plan_wall'] + m['run_wall']:.0f} s" + (f" (goal < {GOAL_WALL:.0f} s)" if m["n"] >= 10000 else ""),
            flush=True,
        )
        if m["ended"] < m["planned"]:
            print(f"{'':>6} stopped by --max-wall: {m['ended']} of {m['planned']} swaps ended (per swap: over those)")
        for line in m["not_done"]:
            print(f"{'':>6} not done: {line[:200]}")
    print(load_average())


if __name__ == "__main__":
    main()
