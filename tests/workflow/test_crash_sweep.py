"""Crash sweep: the lbswap process dies (exit 137, like SIGKILL) right after each side-effecting call of a
swap, then `lbswap resume` must end it done or cleanly rolled back, with I1-I7 holding. Also crashes in the
middle of a rollback. Runs the real CLI in subprocesses: the crash is a real process death."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbswap.clouds import fake
from tests import invariants
from tests.workflow.scenario import Scenario, run_with_fault, scenario, template


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


def _audit_of_clean_run(tmpl, where: Path, strategy: str) -> list[dict]:
    _before, after, result = run_with_fault(scenario(tmpl, where, strategy))
    assert result.swaps[0].state == "done"
    return after["audit"]


def _crash_then_resume(run_cli, sc: Scenario, *, env: dict[str, str] | None = None, **faults) -> dict:
    before = fake.FakeCloud(sc.cloud_path).snapshot_state()
    fake.set_faults(sc.cloud_path, **faults)
    backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
    run = run_cli([*backend, "run", "--lb", sc.lb_id, "--strategy", sc.strategy, "--allow-downtime", "--yes"], env=env)
    assert run.returncode == 137, (run.returncode, run.stderr[-2000:])
    fake.clear_faults(sc.cloud_path)
    resumed = run_cli([*backend, "resume", "-f", "json"])
    assert resumed.returncode in (0, 1), resumed.stderr[-2000:]
    (campaign,) = json.loads(resumed.stdout)
    swap = campaign["swaps"][0]
    after = fake.FakeCloud(sc.cloud_path).snapshot_state()
    invariants.check(before, after, sc.lb_id, swap)
    status = run_cli([*backend, "status", "-f", "json"])
    assert json.loads(status.stdout)[0]["swaps"][0]["state"] == swap["state"]
    return swap


@pytest.mark.parametrize("strategy", ["fip-swap", "failover", "recreate"])
def test_crash_after_every_side_effect_then_resume(tmpl, tmp_path: Path, run_cli, strategy: str) -> None:
    side_effects = len(_audit_of_clean_run(tmpl, tmp_path / "clean", strategy))
    assert side_effects >= 2
    states = []
    for n in range(1, side_effects + 1):
        swap = _crash_then_resume(run_cli, scenario(tmpl, tmp_path / str(n), strategy), crash_at=n)
        states.append(swap["state"])
    assert "done" in states, states


def test_crash_during_a_rollback_then_resume(tmpl, tmp_path: Path, run_cli) -> None:
    sc = scenario(tmpl, tmp_path / "clean", "fip-swap")
    fake.set_faults(sc.cloud_path)  # count calls the way the runs below do: from the CLI's first call
    backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
    clean = run_cli([*backend, "run", "--lb", sc.lb_id, "--yes"])
    assert clean.returncode == 0, clean.stderr
    audit = fake.FakeCloud(sc.cloud_path).snapshot_state()["audit"]
    flip = next(a for a in audit if a["call"] == "move_floating_ip")
    # an API error on the call after the flip (the post-flip check) starts a rollback: flip back, delete clone;
    # reads retry such errors, so the run turns retries off
    n_flip = [a["n"] for a in audit].index(flip["n"]) + 1
    for crash_at in (n_flip + 1, n_flip + 2):
        swap = _crash_then_resume(
            run_cli,
            scenario(tmpl, tmp_path / f"rb{crash_at}", "fip-swap"),
            env={"LBSWAP_READ_RETRY_SECONDS": "0"},
            fail_at=flip["call_n"] + 1,
            crash_at=crash_at,
        )
        assert swap["state"] == "rolled_back", swap
