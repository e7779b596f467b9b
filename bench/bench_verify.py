"""What verify and watch cost and catch on the local data plane, in one run, with real packets.

1. The time the verify adds to a fip-swap: twin load balancers (SINGLE, HTTP, 2 members) upgraded to a good
   image, one with the verify and one with ``--no-verify`` (both without a watch), side by side.
2. The watch's detection time per fault kind: for each of refuse, http-503, reset and stall, a load balancer
   is swapped to an image whose amphorae show the fault ``--fault-after`` seconds after they started (so the
   verify passes and the flip happens); the probe (new connections at a fixed rate through the floating IP)
   sees the first failure, the watch trips, the floating IP flips back. Printed: first failed connection to
   trip, trip to flip back, and the failed connections the fault cost.

Prints; asserts nothing. Needs root and scripts/setup-dataplane.sh.

    .venv/bin/python bench/bench_verify.py [--rate 200] [--fault-after 10] [--watch-interval 0.5]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from lbswap.clouds.local import LocalCloud
from lbswap.journal import Journal
from lbswap.lab.demo import LAB_OPTIONS
from lbswap.lab.probe import ProbeProcess, Target, summarize
from lbswap.lab.shapes import seed
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import Event, SwapOptions, run_campaign

FAULTS = ("refuse", "http-503", "reset", "stall")


def swap(
    cloud: LocalCloud, root: Path, name: str, info: dict[str, Any], options: SwapOptions, rate: float
) -> dict[str, Any]:
    """One fip-swap under the probe; returns the swap, the probe's attempts and the events."""
    events: list[Event] = []
    probe = ProbeProcess(
        f"{cloud.prefix}-client", [Target(name, info["fip"], 80)], root / name, rate=rate, long_lived=0
    )
    journal = Journal(root / f"{name}.sqlite")
    probe.start()
    try:
        plans = make_plans(cloud, [info["id"]], PlanOptions(strategy="fip-swap"))
        result = run_campaign(cloud, journal, plans, options, on_event=events.append)
    finally:
        journal.close()
        probed = probe.stop()
    return {"swap": result.swaps[0], "attempts": probed.attempts, "events": events}


def at(events: list[Event], step: str, status: str) -> float | None:
    return next((e.at for e in events if e.step == step and e.status == status), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--boot-seconds", type=float, default=1.0)
    parser.add_argument("--fault-after", type=float, default=10.0)
    parser.add_argument("--watch-interval", type=float, default=0.5)
    parser.add_argument("--watch-max-errors", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    cloud = LocalCloud(str(root / "cloud"))
    cloud.up(boot_seconds=args.boot_seconds)
    base = dataclasses.replace(LAB_OPTIONS, drain_timeout=5.0, watch=0.0)
    try:
        names = [("with-verify", "SINGLE", "HTTP", 80), ("no-verify", "SINGLE", "HTTP", 80)]
        names += [(f"late-{fault}", "SINGLE", "HTTP", 80) for fault in FAULTS]
        lbs = seed(cloud, names)  # every source on the old, good image
        cloud.publish_image("amphora-good", ["amphora"])
        print(f"boot window {args.boot_seconds:g} s; probe {args.rate:g} new connections/s per floating IP\n")
        print("1. the time the verify adds to a fip-swap (no watch; drain 5 s)")
        print(f"{'swap':<12} {'state':<8} {'verify s':>9} {'main flow s':>12} {'failed':>7} {'attempts':>9}")
        flows = {}
        for name, verify in (("with-verify", True), ("no-verify", False)):
            run = swap(cloud, root, name, lbs[name], dataclasses.replace(base, verify=verify), args.rate)
            steps = run["swap"].steps
            main = sum(steps[s]["seconds"] or 0 for s in ("create-clone", "wait-ready", "verify", "flip") if s in steps)
            flows[name] = main
            summary = summarize(run["attempts"], [])
            verify_s = steps.get("verify", {}).get("seconds")
            print(
                f"{name:<12} {run['swap'].state:<8} {verify_s or 0:>9.2f} {main:>12.2f} "
                f"{summary.failed:>7} {summary.attempts:>9}"
            )
        print(f"   verify adds {flows['with-verify'] - flows['no-verify']:+.2f} s to create..flip\n")

        print(
            f"2. the watch's detection time (fault {args.fault_after:g} s after the amphora started; probe every "
            f"{args.watch_interval:g} s, trips past {args.watch_max_errors} errors)"
        )
        print(
            f"{'fault':<9} {'state':<12} {'first fail->trip s':>19} {'trip->back s':>13} "
            f"{'failed':>7} {'attempts':>9}  reason"
        )
        options = dataclasses.replace(
            base, watch=60.0, watch_interval=args.watch_interval, watch_max_errors=args.watch_max_errors
        )
        for fault in FAULTS:
            cloud.publish_image(f"amphora-{fault}-late", ["amphora"], fault=fault, fault_after=args.fault_after)
            name = f"late-{fault}"
            run = swap(cloud, root, name, lbs[name], options, args.rate)
            result, events = run["swap"], run["events"]
            failed = [a for a in run["attempts"] if not a.ok]
            tripped = at(events, "watch", "failed")
            back = at(events, "flip", "reverted")
            first = min((a.t for a in failed), default=None)
            detect = f"{tripped - first:.2f}" if tripped and first else "-"
            revert = f"{back - tripped:.2f}" if back and tripped else "-"
            reason = (result.watch or {}).get("reason") or result.error or ""
            print(
                f"{fault:<9} {result.state:<12} {detect:>19} {revert:>13} {len(failed):>7} "
                f"{len(run['attempts']):>9}  {reason[:70]}"
            )
    finally:
        cloud.down()


if __name__ == "__main__":
    main()
