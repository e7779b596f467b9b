"""Scale-out on the real Octavia and Neutron APIs of tier 2 (scripts/test-openstack.sh starts the stack and, through
scripts/test-scaleout.sh, the Redis server): `lbswap run --jobboard` posts a campaign over a few load balancers
with floating IPs, two real `lbswap conductor` processes drive it, and one is SIGKILLed in the middle of a swap.

Every swap ends done; each floating IP points at exactly one load balancer, the ACTIVE clone of its source; no
clone is left beside a source (each source is gone, with exactly one clone); no swap had two drivers at once (the
side effects past the fencing come from one conductor, then from the next, never back and forth); and `status`
agrees with the cloud. The journal is the SQLite file. Marked ``openstack`` only (never ``scaleout``: the
scale-out tier runs without the stack), so with CI=true neither the stack nor Redis can be missing silently.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds.openstack import OpenStackCloud
from lbswap.errors import Conflict, NotFound
from lbswap.model import MARKER_CLONE_OF
from tests.clouds import openstack_stack as stack
from tests.operator import SRC, Operator, Process
from tests.scaleout.conftest import RedisBoard

pytestmark = [
    pytest.mark.openstack,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]

SOURCES = 4
CLAIM_EXPIRY = 2.0
LEASE_TIMEOUT = 4.0
TIMING = ("--claim-expiry", str(CLAIM_EXPIRY), "--lease-timeout", str(LEASE_TIMEOUT), "--heartbeat", "0.3")
TIMING += ("--poll", "0.2")
# no probes towards the stack's floating IPs (they lead nowhere), no drain to wait for
QUICK = ("--no-verify", "--drain-timeout", "0", "--watch", "0")


class OpenStackOperator(Operator):
    """An operator's terminal on the tier 2 cloud (``--os-cloud``) and one SQLite journal."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, sample=0)
        # the python redis client may live outside the venv (a developer's PYTHONPATH): keep it for the children
        extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != SRC]
        self.env["PYTHONPATH"] = os.pathsep.join([str(SRC), *extra])
        self.env.pop("LBSWAP_JOBBOARD_PASSWORD", None)

    def base(self, backend: Path | None = None) -> list[str]:
        return ["--os-cloud", stack.CLOUD, "--journal", str(self.journal_path)]


@pytest.fixture(scope="module")
def conn() -> Any:
    return stack.connect()


@pytest.fixture(scope="module")
def net(conn: Any) -> stack.Net:
    return stack.ensure_network(conn)


@pytest.fixture
def sources(conn: Any, net: stack.Net) -> Iterator[list[dict[str, Any]]]:
    """Small load balancers, each with a floating IP on its VIP; whatever the test leaves is deleted after it."""
    lbs = [stack.create_lb(conn, stack.small_body(net, stack.unique("scaleout"))) for _ in range(SOURCES)]
    fips = [stack.add_fip(conn, net, lb["vip_port_id"]) for lb in lbs]
    try:
        yield [{"lb": lb, "fip": fip} for lb, fip in zip(lbs, fips, strict=True)]
    finally:
        _clean_up(conn, [lb["id"] for lb in lbs], fips)


def _clean_up(conn: Any, source_ids: list[str], fips: list[Any]) -> None:
    """Delete the floating IPs, the sources and their clones, and wait until they are gone: through the backend,
    which also deletes the VIP ports the noop network driver leaves (the tier's later tests find nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fip in fips:
            conn.network.delete_ip(fip, ignore_missing=True)
        doomed = [c.id for s in source_ids for c in stack.clones_of(conn, s)] + source_ids
    backend = OpenStackCloud(stack.CLOUD)
    try:
        for lb_id in doomed:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if not backend.get_load_balancer(lb_id).provisioning_status.startswith("PENDING"):
                        backend.delete_load_balancer(lb_id)
                except NotFound:  # gone, its VIP port deleted with the read that found it gone
                    break
                except Conflict:
                    pass
                time.sleep(0.5)
    finally:
        backend.close()


def _states(op: Operator, campaign_id: str) -> dict[str, str]:
    db = sqlite3.connect(op.journal_path, timeout=30)
    try:
        rows = db.execute("SELECT lb_id, state FROM lbswap_swaps WHERE campaign_id=?", (campaign_id,)).fetchall()
    finally:
        db.close()
    return {r[0]: r[1] for r in rows}


def _leases(op: Operator, campaign_id: str) -> dict[str, tuple[int, float, int]]:
    """Swap leases: load balancer -> (pid, heartbeat, token)."""
    db = sqlite3.connect(op.journal_path, timeout=30)
    try:
        rows = db.execute(
            "SELECT campaign_id, pid, heartbeat, token FROM lbswap_leases WHERE campaign_id LIKE ?",
            (campaign_id + "/%",),
        ).fetchall()
    finally:
        db.close()
    return {r[0].split("/", 1)[1]: (int(r[1]), float(r[2]), int(r[3])) for r in rows}


def _wait(what: str, check: Any, timeout: float, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"waited {timeout} s for {what}")


def _driving(op: Operator, campaign_id: str, process: Process) -> list[str]:
    """The swaps ``process`` holds a live lease on (it is mid-swap)."""
    now = time.time()
    return [
        lb for lb, (pid, beat, _token) in _leases(op, campaign_id).items() if pid == process.pid and now - beat < 1.0
    ]


def _conductor(op: Operator, board: RedisBoard) -> Process:
    return op.start(
        "conductor",
        "--jobboard",
        board.url,
        "--jobboard-password-file",
        str(board.password_file),
        "--workers",
        "2",
        "-f",
        "json",
        *TIMING,
    )


def test_two_conductors_on_the_real_apis_survive_a_killed_one(
    conn: Any, sources: list[dict[str, Any]], tmp_path: Path, redis_board: RedisBoard
) -> None:
    started = time.monotonic()
    ids = [s["lb"]["id"] for s in sources]
    with OpenStackOperator(tmp_path / "op") as op:
        side_effects = tmp_path / "side-effects.jsonl"
        op.env["LBSWAP_TEST_SIDE_EFFECT_LOG"] = str(side_effects)
        op.env["LBSWAP_JOBBOARD_PASSWORD"] = redis_board.password
        selection = [arg for lb_id in ids for arg in ("--lb", lb_id)]
        posted = op.run(
            "run", *selection, "--yes", "--parallel", "3", "--jobboard", redis_board.url, *QUICK, "-f", "json"
        )
        del op.env["LBSWAP_JOBBOARD_PASSWORD"]
        assert posted.returncode == 0, posted
        campaign = posted.json()
        campaign_id = campaign["campaign_id"]
        assert {s["id"] for s in campaign["swaps"]} == set(ids)
        assert {s["strategy"] for s in campaign["swaps"]} == {"fip-swap"}, campaign["swaps"]

        killed, survivor = _conductor(op, redis_board), _conductor(op, redis_board)
        # SIGKILL one conductor in the middle of a swap: its claim expires, the other continues that swap
        killed_swaps = _wait("the first conductor to drive a swap", lambda: _driving(op, campaign_id, killed), 120)
        time.sleep(0.5)  # somewhere inside the swap (a swap takes seconds on these APIs)
        killed.signal(signal.SIGKILL)
        killed.wait(10)
        _wait(
            "every swap to end",
            lambda: all(s not in ("pending", "running") for s in _states(op, campaign_id).values()),
            timeout=300,
            poll=0.5,
        )
        survivor.signal(signal.SIGTERM)
        finished = survivor.wait(60)
        assert finished.returncode == 0 and finished.json()["driven"] >= 1, finished
        elapsed = time.monotonic() - started

        states = _states(op, campaign_id)
        assert states == dict.fromkeys(ids, "done"), states
        for lb in killed_swaps:  # the killed conductor's swap was taken over (a newer lease) and finished
            assert _leases(op, campaign_id)[lb][2] >= 2, f"swap {lb} was never taken over"

        # the cloud: each source gone, exactly one clone of it, ACTIVE, holding the source's floating IP
        status = op.run("status", campaign_id, "-f", "json")
        assert status.returncode == 0, status
        reported = {s["id"]: s for s in status.json()[0]["swaps"]}
        all_lbs = conn.load_balancer.get("/lbaas/loadbalancers").json()["loadbalancers"]
        by_port: dict[str, list[dict[str, Any]]] = {}
        for lb in all_lbs:
            by_port.setdefault(lb["vip_port_id"], []).append(lb)
        for source in sources:
            source_id = source["lb"]["id"]
            assert not stack.lb_exists(conn, source_id), f"source {source_id} is left"
            assert not list(conn.network.ports(name=f"octavia-lb-{source_id}")), f"VIP port of {source_id} leaked"
            clones = [lb for lb in all_lbs if MARKER_CLONE_OF + source_id in (lb.get("tags") or [])]
            assert len(clones) == 1, (source_id, [c["id"] for c in clones])
            clone = clones[0]
            assert clone["provisioning_status"] == "ACTIVE", clone
            fip = conn.network.get_ip(source["fip"].id)
            holders = by_port.get(fip.port_id, [])
            assert [h["id"] for h in holders] == [clone["id"]], (fip.floating_ip_address, fip.port_id, holders)
            # status agrees with the cloud: done, with this clone
            assert reported[source_id]["state"] == "done", reported[source_id]
            assert reported[source_id]["clone_id"] == clone["id"], reported[source_id]

        # no swap had two drivers at once: per swap, the side effects come from one conductor, then (after the
        # takeover) from the next, never back and forth; and each swap created its clone once
        effects = [json.loads(line) for line in side_effects.read_text().splitlines()]
        assert {e["pid"] for e in effects} <= {killed.pid, survivor.pid}
        per_swap: dict[str, list[dict[str, Any]]] = {}
        for effect in sorted(effects, key=lambda e: e["at"]):
            per_swap.setdefault(effect["swap"], []).append(effect)
        assert set(per_swap) == set(ids), "a swap made no side effect: the hook is not working"
        for lb, calls in per_swap.items():
            drivers = [c["pid"] for i, c in enumerate(calls) if i == 0 or calls[i - 1]["pid"] != c["pid"]]
            assert len(drivers) == len(set(drivers)), f"swap {lb}: drivers alternated {drivers}"
        print(
            f"\nscale-out on tier 2: {SOURCES} swaps, 2 conductors (1 SIGKILLed mid-swap, {len(killed_swaps)} "
            f"taken over), side effects {len(effects)}, in {elapsed:.1f} s"
        )
