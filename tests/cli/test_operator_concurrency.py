"""One driver per campaign (I9) and one cloud per campaign (I10), tried from two terminals at once.

Two `lbswap resume` after an interrupted run: one drives, the other exits 2 naming the holder (or finds
nothing left when the first was already done). `resume`, `rollback` and `finalize` while a run drives the
campaign (and `recover`, which is for a lost journal), and against another cloud: exit 2 and nothing changed.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from lbswap.clouds import fake
from tests import invariants
from tests.operator import (
    RUN_ARGS,
    Calibration,
    Operator,
    calibration,
    cloud_view,
    fractions,
    holder_refusal,
    interrupt_run,
)

INTERRUPT_SEED = 20261125
INTERRUPTS = fractions(INTERRUPT_SEED, 10)
SMALL = 12  # where four swaps in flight suffice (the signal and journal tests calibrate the same size)


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Calibration:
    return calibration(tmp_path_factory.mktemp("calibration"))


@pytest.mark.parametrize("fraction", INTERRUPTS)
def test_two_resumes_at_once_after_an_interrupted_run(where: Calibration, tmp_path: Path, fraction: float) -> None:
    with Operator(tmp_path) as op:
        before = op.state()
        stopped = interrupt_run(op, where, fraction, (signal.SIGTERM,))
        assert stopped.returncode == 143, stopped

        first, second = op.start("resume", "-f", "json"), op.start("resume", "-f", "json")
        ended = [(first, first.wait()), (second, second.wait())]
        refused = [(p, f) for p, f in ended if f.returncode == 2]
        if refused:
            assert len(refused) == 1, f"both resumes refused: {ended}"
            loser, refusal = refused[0]
            winner, drove = next(e for e in ended if e[0] is not loser)
            holder_refusal(refusal, winner)
            assert drove.returncode in (0, 1), drove
            assert drove.json(), "the resume that drove the campaign found nothing to do"
        else:
            for _process, finished in ended:
                assert finished.returncode in (0, 1), finished
            idle = [f for _p, f in ended if not f.json()]
            assert idle, "both resumes drove the campaign, neither refused nor found it finished"

        op.resume_until_done()
        op.check_finished(before)


def test_resume_rollback_finalize_while_a_run_drives_the_campaign(tmp_path_factory: pytest.TempPathFactory) -> None:
    where = calibration(tmp_path_factory.mktemp("calibration"), SMALL)
    with Operator(tmp_path_factory.mktemp("drives"), sample=SMALL) as op:
        before = op.state()
        run = op.start(*RUN_ARGS)
        op.wait_for_writes(run, where.point(0.3))
        assert run.running(), f"the run ended before its pause: {run.wait()}"
        with op.paused(run):  # stopped outside any lock: only the commands below could change anything
            campaign = op.campaign_id()
            cloud, journal = cloud_view(op.state()), op.campaigns()
            for args in (("resume",), ("resume", campaign), ("rollback", campaign), ("finalize", campaign)):
                holder_refusal(op.run(*args), run)
                assert cloud_view(op.state()) == cloud, f"`lbswap {' '.join(args)}` changed the cloud"
            # recover is for a lost journal: it finds the clones in flight by their tags, and leaves them be
            recovered = op.run("recover", "--yes")
            if invariants.clones_beside_sources(op.state()):
                holder_refusal(recovered, run)
            else:
                assert recovered.returncode == 0, recovered
            assert cloud_view(op.state()) == cloud, "`lbswap recover` changed the cloud under a live run"
            assert op.campaigns() == journal, "the refused commands changed the journal"
        finished = run.wait()
        assert finished.returncode == 0, finished
        op.check_finished(before, all_done=True)


def _seed_other_cloud(op: Operator, path: Path) -> None:
    """Another cloud with the same fleet (same ids: a rehearsal copy), seeded the way an operator does."""
    seeded = op.run("fake", "seed", str(path), "--sample", str(len(op.ids)))
    assert seeded.returncode == 0, seeded
    assert sorted(fake.FakeCloud(path).snapshot_state()["lbs"]) == sorted(op.ids)


@pytest.mark.parametrize("command", ["resume", "rollback", "finalize"])
def test_a_campaign_refuses_another_cloud(tmp_path: Path, command: str) -> None:
    with Operator(tmp_path, sample=6) as op:
        other = tmp_path / "other.json"
        _seed_other_cloud(op, other)
        before = op.state()
        if command == "finalize":  # a finished campaign that kept its sources
            ran = op.run("run", "--all", "--yes", "--allow-downtime", "--keep-source", "60")
            assert ran.returncode == 0, ran
        else:  # an unfinished one: the process died after the 4th change to the cloud (the canary's flip, after
            # its clone and the verify's temporary floating IP came and went; before its retire)
            fake.set_faults(op.cloud_path, crash_at=4)
            assert op.run("run", "--all", "--yes", "--allow-downtime", "--parallel", "2").returncode == 137
            fake.clear_faults(op.cloud_path)
        campaign = op.campaign_id()
        views = cloud_view(op.state()), cloud_view(fake.FakeCloud(other).snapshot_state())
        journal = op.campaigns()

        wrong = op.run(command, campaign, backend=other)
        assert wrong.returncode == 2, wrong
        assert len(wrong.lines()) == 1, wrong
        assert (cloud_view(op.state()), cloud_view(fake.FakeCloud(other).snapshot_state())) == views, (
            "a command against another cloud changed one of them"
        )
        assert op.campaigns() == journal, "a command against another cloud changed the journal"

        right = op.run(command, campaign)
        assert right.returncode == 0, right
        if command == "finalize":
            op.check_finished(before, all_done=True)
        else:
            op.resume_until_done()
            op.check_finished(before)


def test_two_runs_at_once_on_one_fleet_make_one_campaign(tmp_path: Path) -> None:
    """Two terminals, the same `lbswap run --all`: one campaign takes the load balancers, the other exits 2."""
    with Operator(tmp_path, sample=SMALL) as op:
        before = op.state()
        first, second = op.start(*RUN_ARGS), op.start(*RUN_ARGS)
        ended = [first.wait(), second.wait()]
        codes = sorted(f.returncode for f in ended)
        assert codes == [0, 2], ended
        refusal = next(f for f in ended if f.returncode == 2)
        assert len(refusal.lines()) == 1, refusal
        (campaign,) = op.campaigns()
        assert campaign["campaign_id"] in refusal.lines()[0], refusal
        op.check_finished(before, all_done=True)
