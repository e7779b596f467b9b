"""`lbswap demo`: a small cloud, a new image, and every load balancer upgraded, fip-swap next to failover.

This version runs on the fake backend (simulated time, no packets): it shows the plan, the campaign, the
journal and the report, and each strategy's upgrade time; the columns measured with real packets
(failed connections, longest gap, long-lived connections cut) are empty until the local data plane runs it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbswap.clouds import fake
from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans
from lbswap.report import write_report
from lbswap.workflow.runner import CampaignResult, Event, SwapOptions, run_campaign


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lbswap" / "demo"


def _rows(result: CampaignResult, topology: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for swap in result.swaps:
        seconds = sum(step.get("seconds") or 0 for step in swap.steps.values())
        rows.append(
            {
                "lb": swap.name,
                "topology": topology.get(swap.id, "?"),
                "strategy": swap.strategy,
                "state": swap.state,
                "attempts": None,
                "failed": None,
                "longest_gap_ms": None,
                "long_lived_total": None,
                "long_lived_cut": None,
                "upgrade_seconds": round(seconds, 1),
            }
        )
    return rows


def run_demo(state_dir: str | None = None, *, on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Seed a fresh simulated cloud, publish a new image, upgrade half the load balancers with fip-swap and
    the other half with failover, and write a report. Returns {"results": [...], "report": path}."""
    root = Path(state_dir) if state_dir else default_dir()
    root.mkdir(parents=True, exist_ok=True)
    cloud_path = root / "cloud.json"
    ids = fake.seed_sample(cloud_path, 10, seed=7)
    fake.set_faults(cloud_path, latency=30.0)
    cloud = fake.FakeCloud(cloud_path)
    cloud.publish_image("amphora-demo-new")
    journal_file = root / "journal.sqlite"
    journal_file.unlink(missing_ok=True)
    journal = Journal(journal_file)
    topology = {lb_id: cloud.read_graph(lb_id).topology for lb_id in ids}
    rows: list[dict[str, Any]] = []
    reports = []
    # seed_sample's mix: 0-5 SINGLE with a floating IP, 6-7 ACTIVE_STANDBY with one, 8 ACTIVE_STANDBY and
    # 9 SINGLE without: both topologies under each strategy
    for strategy, chosen in (("fip-swap", [ids[0], ids[1], ids[6]]), ("failover", [ids[7], ids[8], ids[9]])):
        plans = make_plans(cloud, chosen, PlanOptions(strategy=strategy, allow_downtime=True))
        result = run_campaign(cloud, journal, plans, SwapOptions(drain_timeout=60.0), on_event=on_event)
        rows += _rows(result, topology)
        reports.append(write_report(result, root / "reports"))
    journal.close()
    summary = root / "reports" / "demo.json"
    summary.write_text(json.dumps({"backend": cloud.spec(), "results": rows, "reports": [str(p) for p in reports]}))
    cloud.close()
    return {"results": rows, "report": str(summary)}
