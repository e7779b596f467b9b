"""A cloud whose reads fail with 503 one time in a hundred: with reads retried at the boundary, `plan` over 300
load balancers completes and a campaign loses nothing (every swap done, I1-I7 hold)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds import fake
from lbswap.clouds.retry import RetryingCloud
from lbswap.errors import CloudError
from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import FleetPolicy, run_campaign
from tests import invariants
from tests.workflow.scenario import OPTIONS

# every read of the Cloud protocol, named here rather than taken from the code under test
READS = frozenset(
    {
        "list_load_balancers",
        "get_load_balancer",
        "read_graph",
        "get_stats",
        "list_amphorae",
        "list_floating_ips",
        "get_floating_ip",
        "get_quota",
        "subnet_free_addresses",
        "can_read_secret",
        "get_flavor",
        "get_provider",
        "list_images",
    }
)
PLAN_OPTIONS = PlanOptions(strategy="auto", allow_downtime=True)


class FlakyReads:
    """A cloud whose reads answer 503 at random (seeded) before reaching it; side effects are untouched."""

    def __init__(self, cloud: fake.FakeCloud, *, rate: float = 0.01, seed: int = 0) -> None:
        self.cloud = cloud
        self.rate = rate
        self.failed: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.cloud, name)
        if name not in READS:
            return attr

        def flaky(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                fail = self._rng.random() < self.rate
                if fail:
                    self.failed[name] += 1
            if fail:
                raise CloudError(f"simulated 503 in {name}", status_code=503)
            return attr(*args, **kwargs)

        return flaky


def _seed(path: Path, n: int) -> tuple[fake.FakeCloud, list[str]]:
    ids = fake.seed_sample(path, n, seed=3)
    cloud = fake.FakeCloud(path)
    cloud.publish_image("amphora-new")
    return cloud, ids


def test_plan_over_300_load_balancers_completes(tmp_path: Path) -> None:
    cloud, ids = _seed(tmp_path / "cloud.json", 300)
    with pytest.raises(CloudError, match="simulated 503"):  # what happens without retries
        make_plans(FlakyReads(cloud), ids, PLAN_OPTIONS)

    flaky = FlakyReads(cloud, seed=1)
    retrying = RetryingCloud(flaky, rng=random.Random(1))
    plans = make_plans(retrying, ids, PLAN_OPTIONS)
    assert [p.lb_id for p in plans] == ids
    assert not [p for p in plans if p.blocking or not p.strategy], [p.findings for p in plans if p.blocking]
    assert Counter(p.strategy for p in plans) == {"fip-swap": 240, "failover": 60}
    failed = sum(flaky.failed.values())
    assert failed >= 5, flaky.failed
    assert retrying.retries == failed, "every failed read was retried, and nothing else"


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_campaign_on_flaky_reads_loses_nothing(tmp_path: Path, parallel: int) -> None:
    path = tmp_path / "cloud.json"
    cloud, ids = _seed(path, 30)
    fake.set_faults(path, latency=0.5)
    flaky = FlakyReads(cloud, seed=parallel)
    retrying = RetryingCloud(flaky, rng=random.Random(parallel))
    plans = make_plans(retrying, ids, PLAN_OPTIONS)
    before = cloud.snapshot_state()
    retries_before_run = retrying.retries
    journal = Journal(tmp_path / "journal.sqlite")
    result = run_campaign(retrying, journal, plans, OPTIONS, policy=FleetPolicy(parallel=parallel))
    journal.close()
    assert [s.id for s in result.swaps] == ids
    assert {s.state for s in result.swaps} == {"done"}, [(s.id, s.state, s.error) for s in result.swaps]
    assert retrying.retries > retries_before_run, "the run met no failed read: the test proves nothing"
    after = cloud.snapshot_state()
    for swap in result.swaps:
        invariants.check(before, after, swap.id, swap.to_json())
    assert len(after["lbs"]) == len(before["lbs"]), "a load balancer was lost (or a clone left)"
    assert after["fips"].keys() == before["fips"].keys()
    serving = {port: lb["provisioning_status"] for lb in after["lbs"].values() for port in invariants._ports(lb)}
    for fip in after["fips"].values():
        assert serving.get(fip["port_id"]) == "ACTIVE", f"floating IP {fip['id']} is not on an ACTIVE load balancer"
