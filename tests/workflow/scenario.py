"""A one-swap scenario on a fresh fake cloud: seed, plan, run with faults, check I1-I7."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbswap.clouds import fake
from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import CampaignResult, SwapOptions, resume, run_campaign
from tests import invariants

# seed_sample's mix: index 1 SINGLE + FIP + L7, 8 ACTIVE_STANDBY without FIP, 9 SINGLE without FIP
LB_FOR = {"fip-swap": 1, "failover": 8, "recreate": 9}
OPTIONS = SwapOptions(drain_timeout=60.0, stats_interval=10.0)


@dataclass
class Scenario:
    dir: Path
    cloud_path: Path
    journal_path: Path
    lb_id: str
    strategy: str

    def cloud(self) -> fake.FakeCloud:
        return fake.FakeCloud(self.cloud_path)

    def journal(self) -> Journal:
        return Journal(self.journal_path)

    def plans(self, cloud: fake.FakeCloud) -> list[Any]:
        return make_plans(cloud, [self.lb_id], PlanOptions(strategy=self.strategy, allow_downtime=True))


def template(root: Path) -> tuple[Path, Path, list[str]]:
    """A seeded cloud with a newer image published, and an empty journal, to copy per scenario."""
    root.mkdir(parents=True, exist_ok=True)
    cloud_path = root / "cloud.json"
    ids = fake.seed_sample(cloud_path, 10, seed=3)
    fake.FakeCloud(cloud_path).publish_image("amphora-new")
    journal = Journal(root / "journal.sqlite")
    journal.backend  # noqa: B018 - creates taskflow's tables once, copied by every scenario
    journal.close()
    return cloud_path, root / "journal.sqlite", ids


def scenario(tmpl: tuple[Path, Path, list[str]], where: Path, strategy: str) -> Scenario:
    cloud_path, journal_path, ids = tmpl
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(cloud_path, where / "cloud.json")
    shutil.copy(journal_path, where / "journal.sqlite")
    return Scenario(where, where / "cloud.json", where / "journal.sqlite", ids[LB_FOR[strategy]], strategy)


def run_with_fault(sc: Scenario, **faults: Any) -> tuple[dict[str, Any], dict[str, Any], CampaignResult]:
    """Run the swap with ``faults``; when it ends failed (forward-only steps), resume once without faults."""
    cloud = sc.cloud()
    before = cloud.snapshot_state()
    plans = sc.plans(cloud)
    assert not plans[0].blocking, plans[0].findings
    fake.set_faults(sc.cloud_path, **faults)
    journal = sc.journal()
    result = run_campaign(cloud, journal, plans, OPTIONS)
    if result.swaps[0].state in ("failed", "running", "pending"):
        fake.clear_faults(sc.cloud_path)
        (result,) = resume(journal, result.campaign_id, cloud=cloud)
    after = cloud.snapshot_state()
    journal.close()
    invariants.check(before, after, sc.lb_id, result.swaps[0].to_json())
    return before, after, result
