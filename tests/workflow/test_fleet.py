"""Fleet policy: the canary runs alone first and a failure there stops the campaign; the circuit breaker
starts no new swap once enough have failed. Swaps not started end `skipped`, their load balancers untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbswap.clouds import fake
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import FleetPolicy, resume, run_campaign, status
from tests.workflow.scenario import OPTIONS, scenario, template

# seed_sample(seed=3): indexes 0-5 are SINGLE load balancers with a floating IP (fip-swap)
FIP_LBS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


def _campaign(tmpl, tmp_path: Path, policy: FleetPolicy, *, fail_first: bool):
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    ids = [tmpl[2][i] for i in FIP_LBS]
    plans = make_plans(cloud, ids, PlanOptions(strategy="fip-swap"))
    assert not any(p.blocking for p in plans)
    before = cloud.snapshot_state()
    if fail_first:  # the first clone's create ends in ERROR: that swap rolls back
        fake.set_faults(sc.cloud_path, fail_at=1, fail_kind="error-status")
    result = run_campaign(cloud, journal, plans, OPTIONS, policy=policy)
    return sc, cloud, journal, before, result


def _untouched(before: dict, after: dict, lb_id: str) -> bool:
    calls = after["audit"][len(before["audit"]) :]
    return lb_id in after["lbs"] and not [c for c in calls if lb_id in (c.get("lb_id"), *c.get("tags", []))]


def test_a_failed_canary_stops_the_campaign(tmpl, tmp_path: Path) -> None:
    _sc, cloud, journal, before, result = _campaign(tmpl, tmp_path, FleetPolicy(parallel=2, canary=1), fail_first=True)
    states = [s.state for s in result.swaps]
    assert states == ["rolled_back", "skipped", "skipped", "skipped"], [(s.state, s.error) for s in result.swaps]
    assert "canary" in (result.swaps[1].error or "") and "nothing was changed" in (result.swaps[1].error or "")
    after = cloud.snapshot_state()
    for swap in result.swaps[1:]:
        assert _untouched(before, after, swap.id), swap.id
    assert result.state == "stopped by the circuit breaker"
    assert resume(journal, cloud=cloud) == [], "skipped swaps are finished: resume has nothing to do"


def test_the_circuit_breaker_opens_after_max_failures(tmpl, tmp_path: Path) -> None:
    _sc, _cloud, journal, _before, result = _campaign(
        tmpl, tmp_path, FleetPolicy(canary=0, max_failures=1), fail_first=True
    )
    assert [s.state for s in result.swaps] == ["rolled_back", "skipped", "skipped", "skipped"]
    assert "--max-failures 1" in (result.swaps[3].error or "")
    assert status(journal, result.campaign_id)[0].swaps[3].state == "skipped"


def test_without_a_breaker_every_swap_is_attempted(tmpl, tmp_path: Path) -> None:
    *_rest, result = _campaign(tmpl, tmp_path, FleetPolicy(canary=0, max_failures=None), fail_first=True)
    assert [s.state for s in result.swaps] == ["rolled_back", "done", "done", "done"]


def test_a_healthy_canary_lets_the_rest_run_in_parallel(tmpl, tmp_path: Path) -> None:
    *_rest, result = _campaign(tmpl, tmp_path, FleetPolicy(parallel=3, canary=1, max_failures=1), fail_first=False)
    assert {s.state for s in result.swaps} == {"done"}
    assert result.state == "done"
