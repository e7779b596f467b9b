"""Crash sweep over the journal itself: the process dies (exit 137) at every journal commit of a swap, lbswap's
own and taskflow's alike, for every strategy and during a revert; then `resume` must end the swap done or
cleanly rolled back with the invariants holding. A crash between two of taskflow's writes (its flow detail,
then its injector) once left a journal that every later resume failed on.

Each crash is a real process death: the run happens in a forked child that ``os._exit(137)``s at the Nth
commit; the parent resumes in-process, taking over the dead child's lease.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lbswap import journal as journal_mod
from lbswap.clouds import fake
from lbswap.workflow.runner import resume, run_campaign, status
from tests import invariants
from tests.workflow.scenario import OPTIONS, Scenario, scenario, template


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


def _run(sc: Scenario, faults: dict[str, Any]) -> None:
    cloud = sc.cloud()
    plans = sc.plans(cloud)
    fake.set_faults(sc.cloud_path, **faults)
    run_campaign(cloud, sc.journal(), plans, OPTIONS)


def _writes_of_clean_run(sc: Scenario, faults: dict[str, Any]) -> int:
    journal_mod._CRASH_AT, journal_mod._writes = 10**9, 0
    try:
        _run(sc, faults)
        return journal_mod._writes
    finally:
        journal_mod._CRASH_AT, journal_mod._writes = 0, 0


def _crash_at(sc: Scenario, n: int, faults: dict[str, Any]) -> int:
    pid = os.fork()
    if pid == 0:  # the child: run until the Nth journal commit kills it
        code = 0
        try:
            journal_mod._CRASH_AT, journal_mod._writes = n, 0
            _run(sc, faults)
        except BaseException:
            code = 3
        os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


SWEEPS = ("fip-swap", "failover", "recreate", "fip-swap-revert")


def _faults(tmpl: Any, where: Path, sweep: str) -> tuple[str, dict[str, Any]]:
    if sweep != "fip-swap-revert":
        return sweep, {}
    sc = scenario(tmpl, where, "fip-swap")  # a clean run tells which call comes right after the flip
    _run(sc, {})
    audit = sc.cloud().snapshot_state()["audit"]
    flip = next(a for a in audit if a["call"] == "move_floating_ip")
    return "fip-swap", {"fail_at": flip["call_n"] + 1}  # an API error there reverts: flip back, delete clone


@pytest.mark.parametrize("sweep", SWEEPS)
def test_crash_at_every_journal_write_then_resume(tmpl, tmp_path: Path, sweep: str) -> None:
    strategy, faults = _faults(tmpl, tmp_path / "calls", sweep)
    writes = _writes_of_clean_run(scenario(tmpl, tmp_path / "clean", strategy), faults)
    assert writes >= 10, writes
    ended = set()
    for n in range(1, writes + 1):
        sc = scenario(tmpl, tmp_path / str(n), strategy)
        before = sc.cloud().snapshot_state()
        code = _crash_at(sc, n, faults)
        assert code == 137, (n, code)
        fake.clear_faults(sc.cloud_path)
        cloud, journal = sc.cloud(), sc.journal()
        results = resume(journal, cloud=cloud)
        campaigns = journal.campaigns()
        if not campaigns:  # died before the campaign's first commit: nothing was recorded, nothing changed
            assert cloud.snapshot_state()["lbs"] == before["lbs"], n
            continue
        # nothing left to resume when the crash came after the swap's last write
        (result,) = results or status(journal)
        swap = result.swaps[0].to_json()
        invariants.check(before, cloud.snapshot_state(), sc.lb_id, swap)
        ended.add(swap["state"])
        journal.close()
    assert ended & {"done", "rolled_back"}, ended
