"""`lbswap rollback` and `lbswap finalize` from processes of their own (as on another host) against the journal
on MariaDB, on a campaign `lbswap conductor` processes drove: the cloud and `status` agree afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.operator import cloud_view
from tests.scaleout.conftest import RedisBoard, SharedJournal
from tests.scaleout.test_conductors import _conductor, _operator, _post, _states, _stop_all, _wait

pytestmark = pytest.mark.scaleout


def test_rollback_and_finalize_from_other_processes_on_the_shared_journal(
    tmp_path: Path, redis_board: RedisBoard, shared_journal: SharedJournal
) -> None:
    op = _operator(tmp_path, sample=4, journal=shared_journal)
    with op:
        before = op.state()
        posted = _post(op, redis_board, "--parallel", "4", "--keep-source", "60")
        campaign_id, total = posted["campaign_id"], len(posted["swaps"])
        kept = [s["id"] for s in posted["swaps"] if s["strategy"] == "fip-swap"]
        assert len(kept) >= 2, posted["swaps"]
        back, retired = kept[0], kept[1:]
        conductor = _conductor(op, redis_board)
        _wait(
            "every swap ended",
            lambda: (
                sum(_states(op, campaign_id).values()) == total
                and not (set(_states(op, campaign_id)) - {"kept", "done"})
            ),
            timeout=90,
        )
        assert _states(op, campaign_id)["kept"] == len(kept)
        assert all(lb in op.state()["lbs"] for lb in kept), "a kept source is gone"

        # the conductor runs on (it would be on another host); another process rolls one swap back
        rolled = op.run("rollback", campaign_id, "--lb", back, "-f", "json")
        assert rolled.returncode == 0, rolled
        states = {s["id"]: s["state"] for s in rolled.json()["swaps"]}  # the campaign as the journal has it now
        assert states[back] == "rolled_back" and all(states[lb] == "kept" for lb in retired), states

        # and another finalizes the rest: their sources go
        finalized = op.run("finalize", campaign_id, "-f", "json")
        assert finalized.returncode == 1, finalized  # as `status`: 1 while a swap of the campaign is rolled back
        (stopped,) = _stop_all([conductor])
        assert stopped.json()["driven"] == total, stopped  # it drove the campaign, not the rollback or finalize
        after = op.check_finished(before)  # status agrees with the cloud, the invariants hold per swap
        states = {s["id"]: s["state"] for s in finalized.json()["swaps"]}
        assert states[back] == "rolled_back" and {states[lb] for lb in set(states) - {back}} == {"done"}, states
        assert back in after["lbs"] and not [lb for lb in retired if lb in after["lbs"]]

        # a finalized swap is past its point of no return: a rollback of it is refused and changes nothing
        refused = op.run("rollback", campaign_id, "--lb", retired[0], "-f", "json")
        assert refused.returncode == 1, refused
        assert cloud_view(op.state()) == cloud_view(after), "a refused rollback changed the cloud"
        assert {s["id"]: s["state"] for s in refused.json()["swaps"]} == states
