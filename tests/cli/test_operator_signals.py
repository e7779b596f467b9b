"""Ctrl-C and SIGTERM on a real `lbswap run`: every swap stops at its next step boundary, one line names the
campaign and the command that finishes it, exit 130 or 143; `lbswap resume` then finishes everything.
A SIGKILLed driver holds nothing: the next `resume` takes its campaign over."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.operator import RUN_ARGS, Calibration, Operator, calibration

# (signals, exit code, where in the campaign): Ctrl-C during the canary, SIGTERM (systemd, kill) amid parallel
# swaps, Ctrl-C twice late; `test_operator_concurrency` interrupts at ten more points
CASES = {
    "sigint-canary": ((signal.SIGINT,), 130, 0.03),
    "sigterm": ((signal.SIGTERM,), 143, 0.5),
    "sigint-twice": ((signal.SIGINT, signal.SIGINT), 130, 0.75),
}
PARALLEL = 4
SAMPLE = 12  # enough for four swaps in flight after the canary; the two-resume test runs the 30


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Calibration:
    return calibration(tmp_path_factory.mktemp("calibration"), SAMPLE)


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_run_names_its_campaign_and_resume_finishes_it(
    where: Calibration, tmp_path: Path, case: str
) -> None:
    signals, code, fraction = CASES[case]
    with Operator(tmp_path, sample=SAMPLE) as op:
        before = op.state()
        run = op.start(*RUN_ARGS)
        op.wait_for_writes(run, where.point(fraction))
        assert run.running(), f"the run ended before its interrupt point: {run.wait()}"
        side_effects = len(op.state()["audit"])
        for index, sig in enumerate(signals):
            if index:
                op.wait_for_writes(run, op.writes() + 1)  # the second Ctrl-C lands while the first is honoured
            run.signal(sig)
        stopped = run.wait(60)
        # a second Ctrl-C that lands while Python shuts down (signal handlers back to default) kills it by the
        # signal: what a shell also reports as 130, after the first one's line was printed
        assert stopped.returncode == code or (len(signals) > 1 and stopped.returncode == -signal.SIGINT), stopped
        assert "Traceback" not in stopped.stderr, stopped
        campaign = op.campaign_id()
        hints = [line for line in stopped.lines() if "lbswap resume" in line]
        assert len(hints) == 1, f"expected one line naming `lbswap resume`: {stopped.lines()}"
        assert f"lbswap resume {campaign}" in hints[0], hints[0]
        states = [s["state"] for s in op.campaigns()[0]["swaps"]]
        assert "pending" in states or "running" in states, f"nothing left to resume: the signal came too late {states}"
        if len(signals) == 1:
            # at its next step boundary: each swap in flight finished at most the step it was in
            after_signal = len(op.state()["audit"]) - side_effects
            assert after_signal <= 2 * PARALLEL, f"{after_signal} changes to the cloud after the signal"
            assert "rolled_back" not in states, f"an interrupt is not a rollback: {states}"
        op.resume_until_done()
        op.check_finished(before, all_done=True)


def test_interrupted_run_with_json_output_prints_one_document(where: Calibration, tmp_path: Path) -> None:
    with Operator(tmp_path, sample=SAMPLE) as op:
        run = op.start(*RUN_ARGS)
        op.wait_for_writes(run, where.point(0.3))
        run.signal(signal.SIGTERM)
        stopped = run.wait(60)
        assert stopped.returncode == 143, stopped
        document = json.loads(stopped.stdout)  # one document, nothing before or after it
        assert document["exit_code"] == 143, document
        assert f"lbswap resume {op.campaign_id()}" in document["error"], document


def test_a_killed_run_is_taken_over_by_resume(where: Calibration, tmp_path: Path) -> None:
    """SIGKILL leaves a lease whose holder is gone (same host, process dead): resume takes it over."""
    with Operator(tmp_path, sample=SAMPLE) as op:
        before = op.state()
        run = op.start(*RUN_ARGS)
        op.wait_for_writes(run, where.point(0.4))
        run.signal(signal.SIGKILL)
        assert run.wait(60).returncode == -signal.SIGKILL
        first = op.run("resume", "-f", "json")
        assert first.returncode in (0, 1), first
        assert first.json(), "resume found nothing to do after a killed run"
        op.resume_until_done()
        op.check_finished(before)


def test_an_interrupted_resume_names_its_campaign_and_the_next_resume_finishes_it(
    where: Calibration, tmp_path: Path
) -> None:
    """`resume` drives a campaign as `run` does: SIGTERM stops it the same way, and it can be resumed again."""
    with Operator(tmp_path, sample=SAMPLE) as op:
        before = op.state()
        run = op.start(*RUN_ARGS)
        op.wait_for_writes(run, where.point(0.1))
        run.signal(signal.SIGTERM)
        assert run.wait(60).returncode == 143
        campaign = op.campaign_id()
        resume = op.start("resume", campaign, "-f", "json")
        op.wait_for_writes(resume, op.writes() + (where.last_write - where.first_write) // 4)
        assert resume.running(), f"the resume ended before its interrupt: {resume.wait()}"
        resume.signal(signal.SIGTERM)
        stopped = resume.wait(60)
        assert stopped.returncode == 143, stopped
        hints = [line for line in stopped.lines() if "lbswap resume" in line]
        assert len(hints) == 1 and f"lbswap resume {campaign}" in hints[0], stopped
        op.resume_until_done()
        op.check_finished(before, all_done=True)
