"""fip-swap, failover and recreate side by side on the local data plane, in one run, with real packets.

Three twin load balancers (same shape: SINGLE, HTTP listener, 2 members) on one local cloud; each is
upgraded to a new image with one strategy while the probe runs (new connections at a fixed rate, plus
long-lived streams opened before). fip-swap and failover are probed through their floating IP from the
client namespace; recreate (which refuses load balancers with floating IPs) through its VIP from the router
namespace. Prints counts and ratios; asserts nothing. Needs root and scripts/setup-dataplane.sh.

    .venv/bin/python bench/bench_dataplane.py [--rate 200] [--boot-seconds 3] [--long-lived 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lbswap.clouds.local import LocalCloud
from lbswap.journal import Journal
from lbswap.lab.demo import LAB_OPTIONS
from lbswap.lab.probe import ProbeProcess, Target, summarize, with_images
from lbswap.lab.shapes import lb_body
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import Event, run_campaign

STRATEGIES = ("fip-swap", "failover", "recreate")


def seed(cloud: LocalCloud) -> dict[str, dict[str, str]]:
    lbs = {}
    for strategy in STRATEGIES:
        summary = cloud.create_load_balancer(lb_body(f"bench-{strategy}", "SINGLE", "HTTP", 80))
        lbs[strategy] = {"id": summary.id, "vip": summary.vip_address or "", "port_id": summary.vip_port_id or ""}
    for strategy, info in lbs.items():
        while cloud.get_load_balancer(info["id"]).provisioning_status != "ACTIVE":
            time.sleep(0.2)
        if strategy != "recreate":
            fip = cloud.create_floating_ip(floating_network_id="public", port_id=info["port_id"], tags=[])
            info["fip"] = fip.floating_ip_address
    time.sleep(2.5)  # members' first health checks
    return lbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--boot-seconds", type=float, default=3.0)
    parser.add_argument("--long-lived", type=int, default=10)
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lbswap-bench-") as tmp:
        root = Path(tmp)
        cloud = LocalCloud(str(root / "cloud"))
        cloud.up(boot_seconds=args.boot_seconds)
        try:
            lbs = seed(cloud)
            cloud.publish_image("amphora-bench-new", ["amphora"], template="v2")
            journal = Journal(root / "journal.sqlite")
            rows = []
            around_flip = None
            for strategy in STRATEGIES:  # one at a time, so that each has the machine's 2 cores to itself
                info = lbs[strategy]
                netns, address = (
                    (f"{cloud.prefix}-client", info["fip"])
                    if "fip" in info
                    else (f"{cloud.prefix}-router", info["vip"])
                )
                probe = ProbeProcess(
                    netns,
                    [Target(strategy, address, 80)],
                    root / strategy,
                    rate=args.rate,
                    long_lived=args.long_lived,
                    stream_seconds=args.stream_seconds,
                )
                events: list[Event] = []
                probe.start()
                started = time.time()
                try:
                    time.sleep(1.0)
                    plans = make_plans(cloud, [info["id"]], PlanOptions(strategy=strategy, allow_downtime=True))
                    result = run_campaign(cloud, journal, plans, LAB_OPTIONS, on_event=events.append)
                    took = time.time() - started - 1.0
                    time.sleep(1.0)
                finally:
                    probed = probe.stop()
                peers = {a["address"]: a["image"] for a in cloud.amphora_log()}
                summary = summarize(with_images(probed.attempts, peers), probed.long_lived)
                rows.append((strategy, result.swaps[0].state, summary, took))
                flips = [e.at for e in events if e.step == "flip" and e.status == "done"]
                if flips:  # the flip alone, without the clone's creation and the retire sharing the cores
                    near = [a for a in probed.attempts if abs(a.t - flips[0]) <= 1.0]
                    around_flip = summarize(near, [])
            journal.close()
        finally:
            cloud.down()
    interval_ms = 1000.0 / args.rate
    print(
        f"local data plane, SINGLE HTTP twins, probe {args.rate:g} new conn/s ({interval_ms:g} ms apart), "
        f"{args.long_lived} long-lived streams of {args.stream_seconds:g} s"
    )
    print(
        f"modeled amphora rebuild window (failover, recreate): {args.boot_seconds:g} s "
        "(stands for Octavia's VM boot + plugging; not measured here)"
    )
    head = (
        f"{'strategy':<9} {'state':<8} {'failed/attempts':>16} {'ratio':>7} {'slow':>5} {'gap ms':>8} "
        f"{'gap/interval':>12} {'probe lag ms':>12} {'cut/long':>8} {'ratio':>6} {'took s':>6}"
    )
    print(head)
    for strategy, state, s, took in rows:
        print(
            f"{strategy:<9} {state:<8} {f'{s.failed}/{s.attempts}':>16} {s.failed / max(s.attempts, 1):>7.4f} "
            f"{s.slow:>5} {s.longest_gap_ms:>8.1f} {s.longest_gap_ms / interval_ms:>12.1f} {s.probe_spacing_ms:>12.1f} "
            f"{f'{s.long_lived_cut}/{s.long_lived_total}':>8} {s.long_lived_cut / max(s.long_lived_total, 1):>6.2f} "
            f"{took:>6.1f}"
        )
    if around_flip is not None:
        print(
            f"fip-swap within 1 s of the flip: {around_flip.failed}/{around_flip.attempts} failed, longest gap "
            f"{around_flip.longest_gap_ms:.1f} ms, probe lag {around_flip.probe_spacing_ms:.1f} ms"
        )
    fip = rows[0][2]
    goal = fip.failed == 0 and fip.longest_gap_ms <= 2 * interval_ms
    print(
        f"goal (fip-swap 0 failed, longest gap <= 2 probe intervals = {2 * interval_ms:g} ms): "
        f"{'met' if goal else 'not met'}"
    )


if __name__ == "__main__":
    main()
