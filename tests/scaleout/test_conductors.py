"""Scale-out as an operator runs it: `lbswap run --jobboard` posts a campaign, real `lbswap conductor`
processes drive it, every process sharing one journal on MariaDB (`--journal mysql+pymysql://...`) or on
PostgreSQL (`--journal postgresql+psycopg://...`); one conductor is SIGKILLed and one SIGSTOPped past its claim
and lease mid-campaign (on MariaDB only: the 60 swaps take most of this tier's time; the journal's own tests, the
canary, the password checks and the resume from another process run on both servers).

Every swap still ends done, exactly one clone is built per load balancer, the invariants hold, the stopped
conductor acts no more once it runs again, and neither the Redis password nor the database's shows anywhere
an operator or another user could read it (logs, status, report, the process list, the journal itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds import fake
from lbswap.model import MARKER_CLONE_OF
from tests.operator import SRC, Operator, Process, _cloud_lock_free
from tests.scaleout.conftest import RedisBoard, SharedJournal

pytestmark = pytest.mark.scaleout

CLAIM_EXPIRY = 2.0
LEASE_TIMEOUT = 4.0
TIMING = ("--claim-expiry", str(CLAIM_EXPIRY), "--lease-timeout", str(LEASE_TIMEOUT), "--heartbeat", "0.3")
TIMING += ("--poll", "0.2")


class SharedOperator(Operator):
    """An operator whose every command names the journal on a database server, its password in a file of mode
    0600."""

    def __init__(self, root: Path, journal: SharedJournal, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.shared = journal

    def base(self, backend: Path | None = None) -> list[str]:
        return [
            "--backend",
            f"fake:{backend or self.cloud_path}",
            "--journal",
            self.shared.url,
            "--journal-password-file",
            str(self.shared.password_file),
        ]

    @contextlib.contextmanager
    def paused(
        self, process: Process, attempts: int = 1000, ready: Callable[[], bool] = lambda: True
    ) -> Iterator[None]:
        """SIGSTOP ``process`` outside the cloud's lock and outside a journal write transaction, at a moment when
        ``ready()`` (e.g. while it drives a swap)."""
        busy = {"cloud": 0, "journal": 0, "not ready": 0}
        for attempt in range(attempts):
            process.stop()
            cloud_free = _cloud_lock_free(self.cloud_path)
            journal_free = cloud_free and self.shared.write_free(process.pid)
            if journal_free and ready():
                break
            busy["cloud" if not cloud_free else "journal" if not journal_free else "not ready"] += 1
            process.signal(signal.SIGCONT)
            time.sleep(0.005 + 0.02 * (attempt % 5))  # let it run on for different lengths of time
        else:
            raise AssertionError(f"never found {process.args} outside a lock: {busy}")
        try:
            yield
        finally:
            process.signal(signal.SIGCONT)


def _operator(tmp_path: Path, sample: int, name: str = "cloud", journal: SharedJournal | None = None) -> Operator:
    if journal is not None:
        op: Operator = SharedOperator(tmp_path / name, journal, sample=sample, seed=5, name=name)
    else:
        op = Operator(tmp_path / name, sample=sample, seed=5, name=name)
    # the python redis client may live outside the venv (a developer's PYTHONPATH): keep it for the children
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != SRC]
    op.env["PYTHONPATH"] = os.pathsep.join([str(SRC), *extra])
    op.env.pop("LBSWAP_JOBBOARD_PASSWORD", None)
    op.env.pop("LBSWAP_JOURNAL_PASSWORD", None)
    return op


def _conductor(op: Operator, board: RedisBoard, *extra: str, backend: Path | None = None) -> Process:
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
        *extra,
        backend=backend,
    )


def _post(op: Operator, board: RedisBoard, *extra: str) -> dict[str, Any]:
    """`lbswap run --jobboard` with the password in the env (the process list never shows it)."""
    op.env["LBSWAP_JOBBOARD_PASSWORD"] = board.password
    try:
        posted = op.run("run", "--all", "--yes", "--allow-downtime", "--jobboard", board.url, "-f", "json", *extra)
    finally:
        del op.env["LBSWAP_JOBBOARD_PASSWORD"]
    assert posted.returncode == 0, posted
    assert "swap job(s) posted on jobboard redis://:***@127.0.0.1" in posted.stderr, posted
    result: dict[str, Any] = posted.json()
    assert {s["state"] for s in result["swaps"]} == {"pending"}
    return result


def _query(op: Operator, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """Read the journal as it is (``?`` placeholders), on its server or in the SQLite file."""
    if isinstance(op, SharedOperator):
        return op.shared.query(sql.replace("?", "%s"), params)
    db = sqlite3.connect(op.journal_path, timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _states(op: Operator, campaign_id: str) -> Counter[str]:
    rows = _query(op, "SELECT state FROM lbswap_swaps WHERE campaign_id=?", (campaign_id,))
    return Counter(r[0] for r in rows)


def _leases(op: Operator, campaign_id: str) -> dict[str, tuple[int, float, int]]:
    """Swap leases: load balancer -> (pid, heartbeat, token)."""
    rows = _query(
        op,
        "SELECT campaign_id, pid, heartbeat, token FROM lbswap_leases WHERE campaign_id LIKE ?",
        (campaign_id + "/%",),
    )
    return {r[0].split("/", 1)[1]: (int(r[1]), float(r[2]), int(r[3])) for r in rows}


def _wait(what: str, check: Any, timeout: float = 60.0, poll: float = 0.05) -> Any:
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


def _stop_all(conductors: list[Process]) -> list[Any]:
    for c in conductors:
        if c.running():
            c.signal(signal.SIGTERM)
    finished = [c.wait(60) for c in conductors]
    for f in finished:  # a conductor stops cleanly on SIGTERM and says what it did (one JSON document)
        assert f.returncode == 0 and "driven" in f.json(), f
    return finished


def _no_password_written(
    op: Operator, campaign_id: str, finished: list[Any], board: RedisBoard, journal: SharedJournal
) -> None:
    """The passwords: in no log, no status, no report, no document, and not in the journal itself."""
    status = op.run("status", campaign_id, "-f", "json")
    assert status.returncode == 0 and status.json()[0]["campaign_id"] == campaign_id, status
    texts = [status.stdout, status.stderr, *(f.stdout + f.stderr for f in finished)]
    texts += [p.read_text(errors="replace") for p in op.root.glob("*.err")]
    texts += [p.read_text(errors="replace") for p in op.root.glob("*.out")]
    texts += [p.read_text(errors="replace") for p in (op.root / "state").rglob("*") if p.is_file()]
    tables = journal.tables()
    assert {"lbswap_swaps", "lbswap_leases", "flowdetails", "atomdetails"} <= tables
    texts += [repr(journal.dump(table)) for table in sorted(tables)]
    for secret in (board.password, journal.password):
        assert len(texts) > 5 and not [t for t in texts if secret in t], "a password was written out"


def _no_password_in_the_process_list(board: RedisBoard, journal: SharedJournal) -> None:
    ps = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True, check=True).stdout
    assert "conductor" in ps and journal.url in ps
    assert board.password not in ps, "the jobboard's password is in the process list"
    assert journal.password not in ps, "the journal's password is in the process list"


@pytest.mark.parametrize("shared_journal", ["mariadb"], indirect=True)
def test_conductors_survive_a_killed_and_a_stopped_one(
    tmp_path: Path, redis_board: RedisBoard, shared_journal: SharedJournal
) -> None:
    started = time.monotonic()
    op = _operator(tmp_path, sample=60, journal=shared_journal)
    other = fake.seed_sample(tmp_path / "other.json", 2, 9)  # another cloud: its conductor must not drive ours
    assert other
    with op:
        before = op.state()
        campaign = _post(op, redis_board, "--parallel", "4", "--canary", "1", "--max-creating", "2")
        campaign_id = campaign["campaign_id"]
        total = len(campaign["swaps"])
        side_effects = tmp_path / "side-effects.jsonl"
        op.env["LBSWAP_TEST_SIDE_EFFECT_LOG"] = str(side_effects)
        conductors = [_conductor(op, redis_board) for _ in range(3)]
        stranger = _conductor(op, redis_board, backend=tmp_path / "other.json")
        killed, stopped, survivor = conductors

        _no_password_in_the_process_list(redis_board, shared_journal)

        # SIGKILL one conductor in the middle of a swap: its claim expires, another continues the swap
        _wait("some swaps done", lambda: _states(op, campaign_id)["done"] >= 3, timeout=90)
        killed_swaps = _wait("the first conductor to drive a swap", lambda: _driving(op, campaign_id, killed))
        killed.signal(signal.SIGKILL)
        killed.wait(10)

        # SIGSTOP another mid-swap until another conductor took its swap over (claim expired, lease lapsed)
        _wait("the second conductor to drive a swap", lambda: _driving(op, campaign_id, stopped))
        with op.paused(stopped, ready=lambda: bool(_driving(op, campaign_id, stopped))):
            paused_at = time.monotonic()
            paused_swaps = _driving(op, campaign_id, stopped)
            assert paused_swaps
            tokens = {lb: _leases(op, campaign_id)[lb][2] for lb in paused_swaps}
            _wait(
                "another conductor to take the stopped conductor's swap over",
                lambda: all(_leases(op, campaign_id)[lb][2] > tokens[lb] for lb in paused_swaps),
                timeout=60,
            )
            paused_for = time.monotonic() - paused_at
            resumed_at = time.time()
        assert paused_for > CLAIM_EXPIRY, "taken over before its claim could expire"

        _wait(
            "every swap to end",
            lambda: sum(n for s, n in _states(op, campaign_id).items() if s not in ("pending", "running")) == total,
            timeout=240,
        )
        survivors = _stop_all([stopped, survivor, stranger])
        elapsed = time.monotonic() - started

        after = op.check_finished(before, all_done=True)  # invariants I1-I8 per swap and fleet; status agrees
        # one driver per swap: exactly one clone ever built per fip-swap source (a second driver would build one)
        for swap in campaign["swaps"]:
            if swap["strategy"] == "fip-swap":
                creates = [
                    a
                    for a in after["audit"]
                    if a["call"] == "create_load_balancer" and MARKER_CLONE_OF + swap["id"] in a.get("tags", [])
                ]
                assert len(creates) == 1, (swap["id"], len(creates))
        stopped_out, survivor_out, stranger_out = survivors
        # no swap ever had two drivers at once: per swap, the side effects (past the fencing) come from one
        # conductor, then (after a takeover) from the next, never back and forth; the conductor stopped past
        # its claim and lease made none on its old swaps once it ran again
        effects = [json.loads(line) for line in side_effects.read_text().splitlines()]
        per_swap: dict[str, list[dict[str, Any]]] = {}
        for effect in sorted(effects, key=lambda e: e["at"]):
            per_swap.setdefault(effect["swap"], []).append(effect)
        for lb, calls in per_swap.items():
            drivers = [c["pid"] for i, c in enumerate(calls) if i == 0 or calls[i - 1]["pid"] != c["pid"]]
            assert len(drivers) == len(set(drivers)), f"swap {lb}: drivers alternated {drivers}"
        late = [e for e in effects if e["pid"] == stopped.pid and e["swap"] in paused_swaps and e["at"] > resumed_at]
        assert not late, f"the stopped conductor acted after it lost its swap: {late}"
        assert {e["pid"] for e in effects} <= {c.pid for c in conductors}
        assert len(per_swap) > total // 2, "few swaps made side effects: the hook is not working"
        # the stopped conductor, running again, found its lease gone and stopped without acting
        assert "lost its lease" in stopped_out.stderr, stopped_out
        for lb in killed_swaps + paused_swaps:
            assert _leases(op, campaign_id)[lb][2] >= 2, f"swap {lb} was never taken over"
        # a conductor of another cloud gave the job back with one line and drove nothing
        assert stranger_out.returncode == 0, stranger_out
        assert "left for another conductor" in stranger_out.stderr
        assert stranger_out.json()["driven"] == 0 and stranger_out.json()["foreign"] >= 1
        driven = sum(f.json()["driven"] for f in (stopped_out, survivor_out))
        print(
            f"\nscale-out: {total} swaps, 3 conductors (1 SIGKILLed, 1 SIGSTOPped {paused_for:.1f} s), "
            f"final states {dict(_states(op, campaign_id))}, driven by the two left {driven}, "
            f"taken over {len(killed_swaps) + len(paused_swaps)}, side effects {len(effects)}, in {elapsed:.1f} s"
        )

        reports = [p for p in (op.root / "state").rglob("reports/*") if p.is_file()]
        assert reports, "no report was written"
        _no_password_written(op, campaign_id, survivors, redis_board, shared_journal)


def test_a_failed_canary_starts_no_other_swap_on_any_conductor(
    tmp_path: Path, redis_board: RedisBoard, shared_journal: SharedJournal
) -> None:
    op = _operator(tmp_path, sample=12, journal=shared_journal)
    with op:
        before = op.state()
        fake.set_faults(op.cloud_path, fail_at=1, fail_kind="error-status")  # the first clone ends in ERROR
        assert not shared_journal.tables()
        conductors = [_conductor(op, redis_board) for _ in range(3)]  # before any run: they create the journal
        _wait("the conductors to start", lambda: "lbswap_swaps" in shared_journal.tables(), timeout=30)
        _no_password_in_the_process_list(redis_board, shared_journal)
        # the operator posts and follows: `--wait` ends when the conductors ended every swap
        op.env["LBSWAP_JOBBOARD_PASSWORD"] = redis_board.password
        followed = op.run(
            "run",
            "--all",
            "--yes",
            "--allow-downtime",
            "--parallel",
            "4",
            "--canary",
            "1",
            "--jobboard",
            redis_board.url,
            "--wait",
            "-f",
            "json",
            timeout=90,
        )
        del op.env["LBSWAP_JOBBOARD_PASSWORD"]
        assert followed.returncode == 1, followed  # a swap rolled back, the rest skipped
        assert followed.json()["state"] == "stopped by the circuit breaker", followed
        assert "pending" in followed.stderr and "skipped" in followed.stderr, followed  # its progress lines
        total = len(followed.json()["swaps"])
        finished = _stop_all(conductors)
        states = op.campaigns()[0]["swaps"]
        assert states[0]["state"] == "rolled_back", states[0]
        assert [s["state"] for s in states[1:]] == ["skipped"] * (total - 1), [s["state"] for s in states]
        assert all("canary" in (s["error"] or "") for s in states[1:])
        after = op.state()
        calls = after["audit"][len(before["audit"]) :]
        assert calls, "the canary made no call"
        for swap in states[1:]:  # untouched: no call on it, no clone of it
            lb_id = swap["id"]
            assert lb_id in after["lbs"], lb_id
            assert not [c for c in calls if c.get("lb_id") == lb_id or MARKER_CLONE_OF + lb_id in c.get("tags", [])]
        _no_password_written(op, followed.json()["campaign_id"], [followed, *finished], redis_board, shared_journal)


def test_the_password_stays_out_of_errors(tmp_path: Path, redis_board: RedisBoard) -> None:
    op = _operator(tmp_path, sample=3)  # the jobboard's password (the journal's: the next test)
    with op:
        wrong = "Wr0ng-" + redis_board.password[:6]
        op.env["LBSWAP_JOBBOARD_PASSWORD"] = wrong
        refused = op.run("run", "--all", "--yes", "--allow-downtime", "--jobboard", redis_board.url)
        assert refused.returncode == 2, refused
        assert "cannot connect" in refused.stderr and wrong not in refused.stderr + refused.stdout, refused
        # nothing recorded: the board is reached before the campaign is
        assert op.run("status", "-f", "json").json() == []
        del op.env["LBSWAP_JOBBOARD_PASSWORD"]
        in_url = f"redis://:{wrong}@127.0.0.1:{redis_board.port}/{redis_board.db}"  # works, but is discouraged
        refused = op.run("run", "--all", "--yes", "--allow-downtime", "--jobboard", in_url)
        assert refused.returncode == 2 and "in the process list" in refused.stderr, refused
        assert "redis://:***@127.0.0.1" in refused.stderr and wrong not in refused.stderr + refused.stdout, refused
        loose = tmp_path / "loose"
        loose.write_text(redis_board.password)
        loose.chmod(0o644)
        refused = op.run("conductor", "--jobboard", redis_board.url, "--jobboard-password-file", str(loose))
        assert refused.returncode == 2 and "chmod 600" in refused.stderr, refused


@pytest.mark.parametrize("shared_journal", ["mariadb"], indirect=True)  # the handover, not the journal, is tested
def test_a_conductor_stopped_by_sigterm_hands_its_swap_on_at_once(
    tmp_path: Path, redis_board: RedisBoard, shared_journal: SharedJournal
) -> None:
    _sigterm_hands_the_swap_on(_operator(tmp_path, sample=6, journal=shared_journal), redis_board)


def test_a_conductor_stopped_by_sigterm_hands_its_swap_on_at_once_on_sqlite(
    tmp_path: Path, redis_board: RedisBoard
) -> None:
    _sigterm_hands_the_swap_on(_operator(tmp_path, sample=6), redis_board)


def _sigterm_hands_the_swap_on(op: Operator, redis_board: RedisBoard) -> None:
    slow = ("--claim-expiry", "60", "--lease-timeout", "120", "--heartbeat", "0.3", "--poll", "0.2")
    with op:
        before = op.state()
        campaign_id = _post(op, redis_board, "--parallel", "1")["campaign_id"]
        first = op.start(
            "conductor",
            "--jobboard",
            redis_board.url,
            "--jobboard-password-file",
            str(redis_board.password_file),
            "-f",
            "json",
            *slow,
        )
        held = _wait("the conductor to drive a swap", lambda: _driving(op, campaign_id, first))
        first.signal(signal.SIGTERM)  # the swap stops at its next step; the job and the lease are given back
        stopped = first.wait(30)
        assert stopped.returncode == 0 and "the job goes back on the board" in stopped.stderr, stopped
        handed_on = time.monotonic()
        second = op.start(
            "conductor",
            "--jobboard",
            redis_board.url,
            "--jobboard-password-file",
            str(redis_board.password_file),
            "-f",
            "json",
            *slow,
        )
        _wait("the second conductor to finish the campaign", lambda: _states(op, campaign_id)["done"] == 6, 50)
        assert time.monotonic() - handed_on < 60, "the swap waited for the claim to expire"
        assert _leases(op, campaign_id)[held[0]][2] == 2  # taken over once, from the lease given back
        _stop_all([second])
        op.check_finished(before, all_done=True)


def test_the_journal_password_stays_out_of_errors(tmp_path: Path, shared_journal: SharedJournal) -> None:
    op = _operator(tmp_path, sample=3)
    base = ["--backend", f"fake:{op.cloud_path}", "--journal", shared_journal.url]
    with op:
        wrong = "Wr0ng-" + shared_journal.password[:6]
        op.env["LBSWAP_JOURNAL_PASSWORD"] = wrong
        refused = op.run(*base, "status")
        assert refused.returncode == 2, refused
        assert "database server failed" in refused.stderr and shared_journal.refused_login in refused.stderr, refused
        assert wrong not in refused.stderr + refused.stdout, refused
        assert len(refused.stderr.strip().splitlines()) == 1, refused
        op.env["LBSWAP_JOURNAL_PASSWORD"] = shared_journal.password  # right, from the environment
        listed = op.run(*base, "status", "-f", "json")
        assert listed.returncode == 0 and listed.json() == [], listed
        del op.env["LBSWAP_JOURNAL_PASSWORD"]
        # in the URL: works, with one warning, and masked wherever the URL shows
        in_url = shared_journal.url.replace("@", f":{wrong}@", 1)
        refused = op.run("--backend", f"fake:{op.cloud_path}", "--journal", in_url, "status")
        assert refused.returncode == 2 and "in the process list" in refused.stderr, refused
        assert f"{shared_journal.user}:***@{shared_journal.host}" in refused.stderr, refused
        assert wrong not in refused.stderr + refused.stdout, refused
        loose = tmp_path / "loose"
        loose.write_text(shared_journal.password)
        loose.chmod(0o644)
        refused = op.run(*base, "--journal-password-file", str(loose), "status")
        assert refused.returncode == 2 and "chmod 600" in refused.stderr, refused
        assert len(refused.stderr.strip().splitlines()) == 1, refused
        assert shared_journal.password not in refused.stderr + refused.stdout


def test_status_and_resume_from_another_process_on_the_shared_journal(
    tmp_path: Path, redis_board: RedisBoard, shared_journal: SharedJournal
) -> None:
    """A campaign posted on the jobboard, one swap driven by a conductor that then stops; `lbswap status` and
    `lbswap resume` (another process, as on another host) read and finish it from the journal on its server."""
    op = _operator(tmp_path, sample=5, journal=shared_journal)
    with op:
        before = op.state()
        campaign_id = _post(op, redis_board, "--parallel", "1")["campaign_id"]
        status = op.run("status", campaign_id, "-f", "json")
        assert status.returncode == 0 and {s["state"] for s in status.json()[0]["swaps"]} == {"pending"}, status
        conductor = _conductor(op, redis_board)
        _wait("a swap done", lambda: _states(op, campaign_id)["done"] >= 1, timeout=60)
        conductor.signal(signal.SIGTERM)
        assert conductor.wait(30).returncode == 0
        left = sum(n for state, n in _states(op, campaign_id).items() if state != "done")
        assert left >= 1, "the conductor finished everything: nothing left to resume"
        resumed = op.resume_until_done()
        assert resumed[0].returncode == 0, resumed[0]
        op.check_finished(before, all_done=True)
        status = op.run("status", campaign_id, "-f", "json")
        assert status.returncode == 0 and {s["state"] for s in status.json()[0]["swaps"]} == {"done"}, status
