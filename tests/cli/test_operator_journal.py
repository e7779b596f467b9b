"""The journal deleted under a running campaign: the run stops at its next step boundary with one line, and
`lbswap recover --yes` finishes or rolls back every unfinished swap from the cloud's marker tags alone.
And whatever an operator did by hand, lbswap never deletes a load balancer a floating IP points at (I8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbswap.clouds import fake
from tests import invariants
from tests.operator import RUN_ARGS, Calibration, Operator, calibration, cloud_view

PARALLEL = 4
SAMPLE = 12


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Calibration:
    return calibration(tmp_path_factory.mktemp("calibration"), SAMPLE)


@pytest.mark.parametrize(
    ("fraction", "suffixes"),
    [(0.15, ("",)), (0.6, ("", "-wal", "-shm"))],
    ids=["rm-journal-early", "rm-journal-wal-shm-late"],
)
def test_journal_deleted_mid_run_then_recover(
    where: Calibration, tmp_path: Path, fraction: float, suffixes: tuple[str, ...]
) -> None:
    with Operator(tmp_path, sample=SAMPLE) as op:
        before = op.state()
        run = op.start(*RUN_ARGS)
        op.wait_for_writes(run, where.point(fraction))
        assert run.running(), f"the run ended before the journal was deleted: {run.wait()}"
        side_effects = len(op.state()["audit"])
        for suffix in suffixes:
            op.journal_path.with_name(op.journal_path.name + suffix).unlink(missing_ok=True)
        stopped = run.wait(60)
        assert stopped.returncode > 0, stopped
        assert "Traceback" not in stopped.stderr, stopped
        about = [line for line in stopped.lines() if "journal" in line]
        assert len(about) == 1, f"expected one line about the journal: {stopped.lines()}"
        after_loss = len(op.state()["audit"]) - side_effects
        assert after_loss <= 2 * PARALLEL, f"{after_loss} changes to the cloud after the journal was deleted"
        unfinished = fake.FakeCloud(op.cloud_path).snapshot_state()
        clones = [lb for lb in unfinished["lbs"].values() if any("lbswap:clone-of=" in t for t in lb["tags"])]
        assert clones, "nothing was left unfinished: the test proves nothing about recover"

        recovered = op.run("recover", "--yes")
        assert recovered.returncode in (0, 1), recovered
        after = op.state()
        invariants.check_fleet(before, after)
        again = op.run("recover", "--yes")
        assert again.returncode == 0, again
        assert cloud_view(op.state()) == cloud_view(after), "a second recover changed the cloud"


def test_finalize_never_retires_a_source_an_operator_moved_a_floating_ip_back_to(tmp_path: Path) -> None:
    """A kept source, and the operator's manual revert (the floating IP back on the source): finalize must
    refuse to retire it, naming the floating IP, instead of cutting the address off."""
    with Operator(tmp_path, sample=3) as op:
        before = op.state()
        source = op.ids[0]
        (fip,) = [f for f in before["fips"].values() if f["port_id"] == before["lbs"][source]["vip_port_id"]]
        ran = op.run("run", "--lb", source, "--yes", "--keep-source", "60", "-f", "json")
        assert ran.returncode == 0, ran
        campaign = ran.json()["campaign_id"]
        assert ran.json()["swaps"][0]["state"] == "kept", ran
        fake.FakeCloud(op.cloud_path).move_floating_ip_behind_our_back(fip["id"], fip["port_id"])

        finalized = op.run("finalize", campaign, "-f", "json")
        assert finalized.returncode == 1, finalized
        after = op.state()
        assert source in after["lbs"], "finalize retired a source a floating IP points at"
        assert after["fips"][fip["id"]]["port_id"] == fip["port_id"], "the floating IP no longer reaches the source"
        (swap,) = json.loads(finalized.stdout)["swaps"]
        assert swap["state"] == "failed", swap
        assert fip["floating_ip_address"] in (swap["error"] or ""), swap


def test_rollback_never_moves_a_floating_ip_onto_a_source_being_retired(tmp_path: Path) -> None:
    """The operator's `rollback` after a run that died in its retire (the source PENDING_DELETE): nothing to roll
    back to. Found with SIGTERM at random points, made deterministic here with a crash after the delete call."""
    with Operator(tmp_path, sample=2) as op:
        before = op.state()
        source = op.ids[0]
        # fip-swap: create, the verify's temporary floating IP (create, release), flip, retire; died right after it
        fake.set_faults(op.cloud_path, crash_at=5)
        crashed = op.run("run", "--lb", source, "--yes")
        assert crashed.returncode == 137, crashed
        fake.clear_faults(op.cloud_path)
        assert op.state()["lbs"][source]["provisioning_status"] == "PENDING_DELETE"
        campaign = op.campaign_id()

        refused = op.run("rollback", campaign, "-f", "json")
        fake.FakeCloud(op.cloud_path).clock.sleep(60)  # Octavia finishes the delete it was asked for
        invariants.check_fleet(before, op.state())  # the clone still holds the floating IP
        (swap,) = refused.json()["swaps"]
        assert swap["state"] != "rolled_back", swap
        op.resume_until_done()
        op.check_finished(before, all_done=True)
        assert refused.returncode == 1, refused
