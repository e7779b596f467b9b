"""I8-I10 in-process: one driver per campaign (lease, takeover, fencing), never delete what serves, a campaign
belongs to one cloud, a stop unwinds without reverting, and recovery from marker tags alone."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from lbswap import journal_lease, recover
from lbswap.clouds import fake
from lbswap.errors import LeaseHeld, StopSwap, WrongCloud
from lbswap.journal import Holder, Journal
from lbswap.model import MARKER_CLONE_OF
from lbswap.workflow.guard import StopRequest
from lbswap.workflow.runner import SwapOptions, resume, rollback, run_campaign, status
from tests import invariants
from tests.workflow.scenario import OPTIONS, scenario, template


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


KEEP = SwapOptions(drain_timeout=0, keep_source_minutes=30)


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


# --- the lease ---------------------------------------------------------------------------------------------


def test_a_live_holder_keeps_the_lease_and_is_named(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.create_campaign("c-1", backend="fake:x", options={}, cloud="fake:1", swaps=[])
    with journal._tx() as db:  # held by another live process on this host: pid 1 (init) is alive
        db.execute(
            "UPDATE lbswap_leases SET pid=1, proc_start=? WHERE campaign_id='c-1'",
            (journal_lease.proc_start(1),),
        )
    with pytest.raises(LeaseHeld, match=r"campaign c-1 is being driven by host .* pid 1 since"):
        journal.take_lease("c-1")


def test_a_dead_holder_on_this_host_is_taken_over_and_fenced_off(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    old = journal.create_campaign("c-1", backend="fake:x", options={}, cloud="fake:1", swaps=[])
    with journal._tx() as db:
        db.execute("UPDATE lbswap_leases SET pid=? WHERE campaign_id='c-1'", (_dead_pid(),))
    new = journal.take_lease("c-1")
    assert new.token == old.token + 1 and new.holder == Holder.me()
    with pytest.raises(StopSwap, match="lost its lease"):  # the old token no longer acts
        journal.check_lease(old)
    journal.check_lease(new)


def test_a_holder_on_another_host_is_taken_over_only_after_its_heartbeat_stops(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.create_campaign("c-1", backend="fake:x", options={}, cloud="fake:1", swaps=[])
    with journal._tx() as db:
        db.execute("UPDATE lbswap_leases SET host='elsewhere', heartbeat=? WHERE campaign_id='c-1'", (1e12,))
    with pytest.raises(LeaseHeld, match="host elsewhere"):
        journal.take_lease("c-1")
    with journal._tx() as db:
        db.execute("UPDATE lbswap_leases SET heartbeat=? WHERE campaign_id='c-1'", (1.0,))
    assert journal.take_lease("c-1").holder.host != "elsewhere"


def test_a_process_that_lost_its_lease_changes_nothing(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    before = cloud.snapshot_state()

    def steal(event) -> None:  # another process takes over while this one waits for the clone
        if event.step == "wait-ready" and event.status == "start":
            with journal._tx() as db:
                db.execute(
                    "UPDATE lbswap_leases SET token=token+1, pid=1, proc_start=?", (journal_lease.proc_start(1),)
                )

    with pytest.raises(StopSwap, match="lost its lease"):
        run_campaign(cloud, journal, sc.plans(cloud), OPTIONS, on_event=steal)
    audit = cloud.snapshot_state()["audit"][len(before["audit"]) :]
    assert [a["call"] for a in audit] == ["create_load_balancer"], "no side effect after the lease was lost"
    (row,) = journal.swaps(journal.campaigns()[0].id)
    assert row.state == "running", "the row is left for the lease's new holder"


# --- I8: never delete what serves --------------------------------------------------------------------------


def test_rollback_refuses_to_delete_a_clone_a_floating_ip_points_at(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    kept = run_campaign(cloud, journal, sc.plans(cloud), KEEP).swaps[0]
    clone = cloud.read_graph(kept.clone_id or "")
    other = next(f for f in cloud.list_floating_ips() if f.port_id != clone.vip_port_id)
    cloud.move_floating_ip_behind_our_back(other.id, clone.vip_port_id)  # someone points another FIP at it
    back = rollback(journal, kept and journal.campaigns()[0].id, cloud=cloud).swaps[0]
    assert back.state != "rolled_back"
    assert f"floating IP {other.floating_ip_address} points at it" in (back.error or "")
    assert clone.id in cloud.snapshot_state()["lbs"], "the clone that serves was not deleted"


# --- I10: one cloud per campaign ---------------------------------------------------------------------------


def test_resume_on_another_cloud_is_refused_and_changes_nothing(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path / "a", "fip-swap")
    other = scenario(tmpl, tmp_path / "b", "fip-swap")
    fake.seed_sample(other.cloud_path, 3)  # another cloud: another id
    cloud, journal = sc.cloud(), sc.journal()
    result = run_campaign(cloud, journal, sc.plans(cloud), KEEP)
    with journal._tx() as db:
        db.execute("UPDATE lbswap_swaps SET state='running'")
    before = other.cloud().snapshot_state()
    with pytest.raises(WrongCloud, match=f"campaign {result.campaign_id} belongs to cloud fake:"):
        resume(journal, result.campaign_id, cloud=other.cloud())
    assert other.cloud().snapshot_state()["lbs"] == before["lbs"]
    assert journal.lease(result.campaign_id) is None, "nothing taken"


# --- stop: a signal or a lost journal unwinds without reverting ------------------------------------------


def test_a_stop_leaves_the_swap_for_resume_without_reverting(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    before = cloud.snapshot_state()
    stop = StopRequest()

    def interrupt(event) -> None:
        if event.step == "flip" and event.status == "done":
            stop.set("interrupted (SIGTERM)", 143)

    with pytest.raises(StopSwap, match="SIGTERM") as info:
        run_campaign(cloud, journal, sc.plans(cloud), OPTIONS, on_event=interrupt, stop=stop)
    assert info.value.exit_code == 143
    calls = [a["call"] for a in cloud.snapshot_state()["audit"][len(before["audit"]) :]]
    # the verify's temporary floating IP comes and goes before the flip
    expected = ["create_load_balancer", "create_floating_ip", "delete_floating_ip", "move_floating_ip"]
    assert calls == expected, "stopped, nothing reverted"
    (result,) = resume(journal, cloud=cloud)
    invariants.check(before, cloud.snapshot_state(), sc.lb_id, result.swaps[0].to_json())
    assert result.swaps[0].state == "done"


def test_a_deleted_journal_stops_the_run_and_recover_finishes_from_tags(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    before = cloud.snapshot_state()

    def lose(event) -> None:
        if event.step == "post-flip-check" and event.status == "done":
            sc.journal_path.unlink()

    with pytest.raises(StopSwap, match="deleted or replaced"):
        run_campaign(cloud, journal, sc.plans(cloud), dataclasses.replace(OPTIONS), on_event=lose)
    found = recover.find(cloud)
    assert [(r.action, r.source_id) for r in found] == [(recover.FINISH, sc.lb_id)]
    done = recover.carry_out(cloud, found, options=SwapOptions(drain_timeout=60))
    assert [error for _r, error in done] == [None]
    after = cloud.snapshot_state()
    assert sc.lb_id not in after["lbs"]
    clone_id = found[0].clone_id
    swap = {"state": "done", "strategy": "fip-swap", "clone_id": clone_id, "error": None, "flips": []}
    invariants.check(before, after, sc.lb_id, swap)
    assert recover.find(cloud) == []


def test_recover_deletes_a_clone_no_client_saw(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()

    def lose(event) -> None:
        if event.step == "wait-ready" and event.status == "done":
            sc.journal_path.unlink()

    with pytest.raises(StopSwap):
        run_campaign(cloud, journal, sc.plans(cloud), OPTIONS, on_event=lose)
    (item,) = recover.find(cloud)
    assert item.action == recover.ROLL_BACK
    recover.carry_out(cloud, [item], options=OPTIONS)
    assert not [lb for lb in cloud.snapshot_state()["lbs"].values() if MARKER_CLONE_OF + sc.lb_id in lb["tags"]]
    assert cloud.read_graph(sc.lb_id).floating_ips, "the source kept its floating IP"


def test_status_needs_no_lease(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    cloud, journal = sc.cloud(), sc.journal()
    result = run_campaign(cloud, journal, sc.plans(cloud), OPTIONS)
    assert status(journal, result.campaign_id)[0].state == "done"
    assert journal.lease(result.campaign_id) is None, "released at the end"
