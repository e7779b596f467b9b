"""Each strategy end to end on the fake cloud, with the invariants checked from the cloud's audit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lbswap.clouds import fake
from lbswap.workflow.runner import Event, SwapOptions, finalize, rollback, run_campaign, status
from tests.workflow.scenario import OPTIONS, Scenario, run_with_fault, scenario, template


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


@pytest.mark.parametrize("strategy", ["fip-swap", "failover", "recreate"])
def test_strategy_ends_done_with_invariants(tmpl, tmp_path: Path, strategy: str) -> None:
    _before, _after, result = run_with_fault(scenario(tmpl, tmp_path, strategy))
    swap = result.swaps[0]
    assert swap.state == "done", swap.error
    assert result.state == "done"
    if strategy == "fip-swap":
        assert [f["floating_ip_address"] for f in swap.flips]
        assert {"snapshot", "create-clone", "wait-ready", "flip", "drain", "retire"} <= set(swap.steps)
        # how the drain ended is in the result, for the change ticket: on zero connections, before its deadline
        assert swap.drain is not None
        assert (swap.drain["drained"], swap.drain["open"]) == (True, 0), swap.drain
        assert 0 < swap.drain["seconds"] <= swap.drain["deadline_seconds"] == OPTIONS.drain_timeout


def test_a_drain_that_reaches_its_deadline_says_how_many_connections_it_left_open(tmpl, tmp_path: Path) -> None:
    # connections that take 1,000 s to end and one stats interval of deadline: some are still open at its end
    # (they are cut at the retire)
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.set_faults(sc.cloud_path, drain_seconds=1000.0)
    cloud, journal = sc.cloud(), sc.journal()
    options = dataclasses.replace(OPTIONS, drain_timeout=OPTIONS.stats_interval)
    swap = run_campaign(cloud, journal, sc.plans(cloud), options).swaps[0]
    assert swap.state == "done", swap.error
    assert swap.drain is not None
    assert swap.drain["drained"] is False and swap.drain["open"] > 0, swap.drain
    assert swap.drain["deadline_seconds"] == OPTIONS.stats_interval


def test_fip_swap_api_calls_stay_within_budget(tmpl, tmp_path: Path) -> None:
    _before, after, _result = run_with_fault(scenario(tmpl, tmp_path, "fip-swap"))
    # 40, plus the verify's temporary floating IP (4 calls) and the 60 s watch (the source once, then the
    # clone's graph and statistics every 10 s)
    assert after["calls"] <= 60, after["calls"]


def test_every_event_takes_the_clouds_clock(tmpl, tmp_path: Path) -> None:
    # the fake's simulated clock starts apart from the wall clock: an event stamped with time.time() falls outside
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    events: list[Event] = []
    start = cloud.clock.now()
    result = run_campaign(cloud, journal, sc.plans(cloud), OPTIONS, on_event=events.append)
    assert result.swaps[0].state == "done"
    assert {e.step for e in events} >= {"swap", "snapshot", "flip", "retire"}
    outside = [e for e in events if not start <= e.at <= cloud.clock.now()]
    assert not outside, outside
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_keep_source_then_finalize(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    result = run_campaign(cloud, journal, sc.plans(cloud), SwapOptions(drain_timeout=0, keep_source_minutes=30))
    assert result.swaps[0].state == "kept"
    assert sc.lb_id in cloud.snapshot_state()["lbs"], "a kept source must stay"
    done = finalize(journal, result.campaign_id, cloud=cloud)
    assert done.swaps[0].state == "done"
    assert sc.lb_id not in cloud.snapshot_state()["lbs"]


def test_rollback_of_a_kept_swap_moves_the_fip_back(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    before = cloud.snapshot_state()
    result = run_campaign(cloud, journal, sc.plans(cloud), SwapOptions(drain_timeout=0, keep_source_minutes=30))
    back = rollback(journal, result.campaign_id, cloud=cloud)
    assert back.swaps[0].state == "rolled_back"
    after = cloud.snapshot_state()
    from tests import invariants

    invariants.check(before, after, sc.lb_id, back.swaps[0].to_json())


def test_a_floating_ip_moved_by_someone_else_stops_the_swap_without_overwriting(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    graph = cloud.read_graph(sc.lb_id)
    fip = graph.floating_ips[0]
    intruder = next(lb for lb in cloud.list_load_balancers() if lb.id != sc.lb_id)

    def hijack(event) -> None:
        if event.step == "wait-ready" and event.status == "done":
            cloud.move_floating_ip_behind_our_back(fip.id, intruder.vip_port_id)

    result = run_campaign(cloud, journal, sc.plans(cloud), OPTIONS, on_event=hijack)
    swap = result.swaps[0]
    assert swap.state == "rolled_back"
    assert "someone else" in (swap.error or "") and "flip" in (swap.error or "")
    assert cloud.get_floating_ip(fip.id).port_id == intruder.vip_port_id, "lbswap overwrote another's move"
    state = cloud.snapshot_state()
    assert not [lb for lb in state["lbs"].values() if lb.get("tags") and f"lbswap:clone-of={sc.lb_id}" in lb["tags"]]


def test_parallel_campaign_over_the_fleet(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    from lbswap.plan import PlanOptions, make_plans

    ids = [lb.id for lb in cloud.list_load_balancers()]
    plans = make_plans(cloud, ids, PlanOptions(allow_downtime=True))
    result = run_campaign(cloud, journal, plans, OPTIONS, parallel=4)
    assert {s.state for s in result.swaps} == {"done"}, [s.error for s in result.swaps]
    assert len(result.swaps) == 10
    assert status(journal, result.campaign_id)[0].state == "done"


def test_scenario_dataclass_names_the_strategy(tmpl, tmp_path: Path) -> None:
    sc: Scenario = scenario(tmpl, tmp_path, "recreate")
    assert sc.strategy == "recreate" and sc.lb_id


def test_a_load_balancer_can_be_upgraded_again_once_its_source_is_retired(tmpl, tmp_path: Path) -> None:
    from lbswap.model import MARKER_CAMPAIGN, MARKER_CLONE_OF
    from lbswap.plan import PlanOptions, make_plans

    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    first = run_campaign(cloud, journal, sc.plans(cloud), OPTIONS).swaps[0]
    assert first.state == "done" and first.clone_id
    again = make_plans(cloud, [first.clone_id], PlanOptions(strategy="fip-swap"))
    assert not again[0].blocking, again[0].findings
    second = run_campaign(cloud, journal, again, OPTIONS)
    assert second.swaps[0].state == "done", second.swaps[0].error
    tags = cloud.read_graph(second.swaps[0].clone_id or "").tags
    assert [t for t in tags if t.startswith((MARKER_CLONE_OF, MARKER_CAMPAIGN))] == [
        MARKER_CLONE_OF + first.clone_id,
        MARKER_CAMPAIGN + second.campaign_id,
    ]


def test_a_clone_whose_source_still_exists_is_not_planned(tmpl, tmp_path: Path) -> None:
    from lbswap.plan import PlanOptions, make_plans

    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    kept = run_campaign(cloud, journal, sc.plans(cloud), SwapOptions(drain_timeout=0, keep_source_minutes=30))
    clone_id = kept.swaps[0].clone_id or ""
    plan = make_plans(cloud, [clone_id], PlanOptions(strategy="fip-swap"))[0]
    assert "is-clone" in [f.code for f in plan.findings if f.blocking]


def test_taskflow_stores_each_steps_state_and_result_but_not_its_progress_marks(tmpl, tmp_path: Path) -> None:
    """The engine's automatic progress marks (0.0 and 1.0 around a step) were two journal commits of a step's
    four; lbswap's steps report none, so none is stored. What resume replays is: states, results, failures."""
    import json
    import sqlite3
    from contextlib import closing

    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud = sc.cloud()
    result = run_campaign(cloud, sc.journal(), sc.plans(cloud), OPTIONS)
    assert [s.state for s in result.swaps] == ["done"]
    with closing(sqlite3.connect(sc.journal_path)) as db:
        rows = db.execute("SELECT name, state, meta, results FROM atomdetails WHERE name != '_TaskFlow_INJECTOR'")
        atoms = {name: (state, json.loads(meta or "{}"), results) for name, state, meta, results in rows}
    assert {"snapshot", "create-clone", "flip", "retire"} <= set(atoms), sorted(atoms)
    assert {state for state, _meta, _results in atoms.values()} == {"SUCCESS"}
    assert all("progress" not in meta for _state, meta, _results in atoms.values()), atoms
    assert json.loads(atoms["snapshot"][2])["id"] == sc.lb_id, "a step's result is stored"
