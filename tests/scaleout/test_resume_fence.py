"""Tier 1 (no Redis): one driver per swap (I9) between conductors and an operator's in-process commands.

While a conductor holds a live lease of one swap of a campaign, `lbswap resume`, `rollback CAMPAIGN` and
`finalize CAMPAIGN` exit 2 with one line naming the campaign, the load balancer and the holder, and change
neither the cloud nor the journal. A lapsed lease, or one whose heartbeat is older than the lease timeout,
no longer holds anything: resume goes on. The holder here is this test process (the commands run in
subprocesses): it runs, on this host, and its lease beats now.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from lbswap.clouds import fake
from lbswap.journal import LEASE_TIMEOUT, Journal
from lbswap.scaleout import leases
from lbswap.scaleout.leases import swap_key
from tests.operator import RUN_ARGS, Operator, cloud_view


def _journal_rows(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def _interrupted(op: Operator) -> tuple[str, str]:
    """A campaign whose run crashed right after its first side effect: resume has work left."""
    fake.set_faults(op.cloud_path, crash_at=1)
    crashed = op.run(*RUN_ARGS)
    assert crashed.returncode == fake.EXIT_CRASH, crashed
    fake.clear_faults(op.cloud_path)
    campaign = op.campaign_id()
    journal = Journal(op.journal_path)
    try:
        lb_id = journal.swaps(campaign)[0].lb_id
    finally:
        journal.close()
    return campaign, lb_id


def _hold(op: Operator, campaign: str, lb_id: str) -> leases.Lease:
    decision = leases.take(op.journal_path, campaign, lb_id, stale_after=LEASE_TIMEOUT)
    assert decision.action == "drive" and decision.lease is not None, decision
    return decision.lease


def test_resume_rollback_finalize_refuse_while_a_conductor_drives_a_swap(tmp_path: Path) -> None:
    with Operator(tmp_path, sample=3) as op:
        campaign, lb_id = _interrupted(op)
        _hold(op, campaign, lb_id)
        cloud, state, journal = cloud_view(op.state()), op.state(), _journal_rows(op.journal_path)
        for args in (("resume",), ("resume", campaign), ("rollback", campaign), ("finalize", campaign)):
            refused = op.run(*args)
            assert refused.returncode == 2, refused
            (line,) = refused.lines()
            for part in (campaign, lb_id, socket.gethostname(), f"pid {os.getpid()}", "stop the conductors"):
                assert part in line, f"`lbswap {' '.join(args)}`: {part!r} is not named: {line}"
            assert cloud_view(op.state()) == cloud, f"`lbswap {' '.join(args)}` changed the cloud"
            assert op.state()["audit"] == state["audit"], f"`lbswap {' '.join(args)}` changed the cloud"
            assert _journal_rows(op.journal_path) == journal, f"`lbswap {' '.join(args)}` changed the journal"


@pytest.mark.parametrize("how", ["lapsed", "stale"])
def test_resume_goes_on_once_the_swap_lease_is_gone(tmp_path: Path, how: str) -> None:
    with Operator(tmp_path, sample=3) as op:
        campaign, lb_id = _interrupted(op)
        lease = _hold(op, campaign, lb_id)
        if how == "lapsed":
            leases.lapse(op.journal_path, lease)
        else:  # the conductor stopped beating (SIGSTOP, lost host): past the lease timeout it holds nothing
            db = sqlite3.connect(op.journal_path)
            try:
                with db:
                    db.execute(
                        "UPDATE lbswap_leases SET heartbeat=? WHERE campaign_id=?",
                        (time.time() - 2 * LEASE_TIMEOUT, swap_key(campaign, lb_id)),
                    )
            finally:
                db.close()
        resumed = op.run("resume", campaign, "-f", "json")
        assert resumed.returncode == 0, resumed
        states = [s["state"] for c in op.campaigns() for s in c["swaps"]]
        assert len(states) == 3 and set(states) == {"done"}, states
