"""The fleet checks the operator tests rely on catch what they name (a check that cannot fail proves nothing)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from lbswap.clouds import fake
from lbswap.model import MARKER_CLONE_OF
from tests import invariants

State = dict[str, Any]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> State:
    path = tmp_path_factory.mktemp("cloud") / "cloud.json"
    fake.seed_sample(path, 10)
    return fake.FakeCloud(path).snapshot_state()


def _with_fip(state: State) -> tuple[str, dict[str, Any]]:
    lb_id, lb = next((i, lb) for i, lb in state["lbs"].items() if _fips(state, lb))
    return lb_id, _fips(state, lb)[0]


def _fips(state: State, lb: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in state["fips"].values() if f["port_id"] == lb["vip_port_id"]]


def _clone(state: State, source_id: str) -> str:
    clone = copy.deepcopy(state["lbs"][source_id])
    clone["id"], clone["vip_port_id"] = "clone-" + source_id, "port-clone-" + source_id
    clone["tags"] = [*clone["tags"], MARKER_CLONE_OF + source_id]
    state["lbs"][clone["id"]] = clone
    state["ports"][clone["vip_port_id"]] = {"id": clone["vip_port_id"]}
    return str(clone["id"])


def _retire(state: State, lb_id: str) -> None:
    lb = state["lbs"].pop(lb_id)
    state["ports"].pop(lb["vip_port_id"])


def _fip_on_nothing(state: State) -> None:
    _with_fip(state)[1]["port_id"] = None


def _lost(state: State) -> None:
    lb_id, fip = _with_fip(state)
    _retire(state, lb_id)
    fip["port_id"] = None


def _lost_without_fip(state: State) -> None:
    _retire(state, next(i for i, lb in state["lbs"].items() if not _fips(state, lb)))


def _beside(state: State) -> None:
    _clone(state, _with_fip(state)[0])


def _two_clones(state: State) -> None:
    lb_id, fip = _with_fip(state)
    clone = _clone(state, lb_id)
    other = copy.deepcopy(state["lbs"][clone])
    other["id"], other["vip_port_id"] = "second", "port-second"
    state["lbs"]["second"], state["ports"]["port-second"] = other, {"id": "port-second"}
    fip["port_id"] = state["lbs"][clone]["vip_port_id"]
    _retire(state, lb_id)


def _deleted_clone_held_the_fip(state: State) -> None:  # issue 7's first finding, in its final state
    lb_id, fip = _with_fip(state)
    _retire(state, lb_id)
    fip["port_id"] = None


def _pending(state: State) -> None:
    next(iter(state["lbs"].values()))["provisioning_status"] = "PENDING_UPDATE"


def _temporary(state: State) -> None:
    _with_fip(state)[1]["tags"] = ["lbswap:temp-fip"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_fip_on_nothing, "points at nothing"),
        (_lost, "points at nothing"),
        (_lost_without_fip, "lost"),
        (_beside, "beside"),
        (_two_clones, "more than one clone"),
        (_deleted_clone_held_the_fip, "points at nothing"),
        (_pending, "PENDING_UPDATE"),
        (_temporary, "temporary"),
    ],
)
def test_check_fleet_catches(seeded: State, damage: Callable[[State], None], message: str) -> None:
    invariants.check_fleet(seeded, seeded)
    after = copy.deepcopy(seeded)
    damage(after)
    with pytest.raises(AssertionError, match=message):
        invariants.check_fleet(seeded, after)


def test_check_fleet_accepts_a_swap_done_and_check_status_holds_the_journal_to_it(seeded: State) -> None:
    after = copy.deepcopy(seeded)
    lb_id, fip = _with_fip(after)
    clone = _clone(after, lb_id)
    fip["port_id"] = after["lbs"][clone]["vip_port_id"]
    _retire(after, lb_id)
    invariants.check_fleet(seeded, after)
    swap = {"id": lb_id, "strategy": "fip-swap", "state": "done", "clone_id": clone}
    invariants.check_status(seeded, after, [swap])
    for wrong in ({"state": "rolled_back"}, {"state": "running"}, {"clone_id": "another"}):
        with pytest.raises(AssertionError):
            invariants.check_status(seeded, after, [{**swap, **wrong}])
    with pytest.raises(AssertionError, match="done"):
        invariants.check_status(seeded, seeded, [swap])  # status says done, the cloud still has the source
