"""Tier 1 (no Redis): the fleet policy across conductors, the swap lease in a real journal, and the jobboard
address with its password kept out of sight."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from lbswap.errors import ConfigError, LeaseHeld, StopSwap
from lbswap.journal import Holder, Journal
from lbswap.scaleout import board, leases
from lbswap.scaleout.leases import _LeaseRow, _Row, decide, swap_key

NOW = 1_000.0
STALE = 4.0
FLEET = {"parallel": 2, "canary": 1, "max_failures": 2}


def _rows(*states: str) -> list[_Row]:
    return [_Row(f"lb{i}", i, state, "end" if state != "pending" else "main") for i, state in enumerate(states)]


def _lease(lb: str, *, age: float = 0.0, token: int = 1, holder: Holder | None = None) -> tuple[str, _LeaseRow]:
    return swap_key("c", lb), _LeaseRow(swap_key("c", lb), holder or Holder.me(), NOW - age, token)


def _decide(rows: list[_Row], lb: str, *held: tuple[str, _LeaseRow], fleet: dict | None = None) -> leases.Decision:
    return decide(rows, dict(held), "c", lb, FLEET if fleet is None else fleet, now=NOW, stale_after=STALE)


def test_only_the_canary_starts_until_it_is_done() -> None:
    rows = _rows("pending", "pending", "pending")
    assert _decide(rows, "lb0").action == "drive"
    assert _decide(rows, "lb1").action == "wait"
    running = _rows("running", "pending", "pending")
    assert _decide(running, "lb1", _lease("lb0")).action == "wait"
    done = _rows("done", "pending", "pending")
    assert _decide(done, "lb1").action == "drive"


def test_a_failed_canary_skips_the_rest() -> None:
    for state in ("failed", "rolled_back"):
        decision = _decide(_rows(state, "pending"), "lb1")
        assert decision.action == "skip" and "canary lb0" in decision.why


def test_the_breaker_opens_after_max_failures() -> None:
    rows = _rows("done", "failed", "rolled_back", "pending")
    decision = _decide(rows, "lb3")
    assert decision.action == "skip" and "--max-failures 2" in decision.why
    assert _decide(rows, "lb3", fleet={"parallel": 2}).action == "drive"


def test_parallel_counts_live_leases_of_every_conductor() -> None:
    rows = _rows("done", "running", "running", "pending")
    other_host = Holder("elsewhere", 1, "x")
    assert _decide(rows, "lb3", _lease("lb1", holder=other_host), _lease("lb2")).action == "wait"
    assert _decide(rows, "lb3", _lease("lb1"), _lease("lb2", age=STALE)).action == "drive"  # lapsed: not in flight
    dead = Holder(Holder.me().host, 999_999_999, "gone")
    assert _decide(rows, "lb3", _lease("lb1"), _lease("lb2", holder=dead)).action == "drive"


def test_a_started_swap_continues_and_a_held_one_is_left_alone() -> None:
    rows = _rows("failed", "running")  # the breaker is open, but lb1 was started: it must finish or revert
    assert _decide(rows, "lb1").action == "drive"
    assert _decide(rows, "lb1", _lease("lb1")).action == "held"
    assert _decide(rows, "lb1", _lease("lb1", age=STALE + 1)).action == "drive"  # SIGSTOPped holder: lapsed
    assert _decide(_rows("done", "done"), "lb1").action == "finished"
    assert _decide(_rows("done", "kept"), "lb1").action == "finished"
    forward = [_Row("lb0", 0, "done", "end"), _Row("lb1", 1, "failed", "forward")]
    assert _decide(forward, "lb1").action == "drive"


def test_take_never_hands_a_token_out_twice(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    swaps = [(f"lb{i}", {}, {}) for i in range(3)]
    campaign_lease = journal.create_campaign(
        "c", backend="fake:x", options={"fleet": {"parallel": 1}}, cloud="x", swaps=swaps
    )
    journal.release_lease(campaign_lease)
    first = leases.take(journal.path, "c", "lb0", stale_after=STALE)
    assert first.action == "drive" and first.lease is not None
    assert leases.take(journal.path, "c", "lb0", stale_after=STALE).action == "held"
    assert leases.take(journal.path, "c", "lb1", stale_after=STALE).action == "wait"  # --parallel 1
    journal.check_lease(first.lease)
    leases.lapse(journal.path, first.lease)
    second = leases.take(journal.path, "c", "lb0", stale_after=STALE)
    assert second.lease is not None and second.lease.token == first.lease.token + 1
    with pytest.raises(BaseException, match="lost its lease"):  # fencing: the first holder may act no more
        journal.check_lease(first.lease)
    assert journal.heartbeat(second.lease) and not journal.heartbeat(first.lease)
    assert time.time() - (journal.lease(swap_key("c", "lb0")) or second.lease).heartbeat < 5
    journal.close()


def test_the_password_comes_from_a_private_file_then_the_env_then_the_url(tmp_path: Path) -> None:
    url = board.parse("redis://:inurl@127.0.0.1:6390/3", env={})
    assert (url.host, url.port, url.db, url.password, url.password_from) == ("127.0.0.1", 6390, 3, "inurl", "url")
    assert "inurl" not in url.shown() + repr(url) and url.shown() == "redis://:***@127.0.0.1:6390/3"
    env = board.parse("redis://:inurl@h:1", env={board.PASSWORD_ENV: "inenv"})
    assert (env.password, env.password_from, env.db) == ("inenv", "env", 0)
    secret = tmp_path / "pw"
    secret.write_text("infile\n")
    secret.chmod(0o600)
    assert board.parse("redis://h:1", password_file=str(secret), env={board.PASSWORD_ENV: "x"}).password == "infile"
    secret.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        board.parse("redis://h:1", password_file=str(secret), env={})
    assert board.parse("redis://h:1", env={}).shown() == "redis://h:1/0"


@pytest.mark.parametrize(
    "url", ["http://h:1", "redis://h", "redis://:hunter2@h:x", "redis://:hunter2@h:1/a", "redis://:hunter2@h:1?db=2"]
)
def test_a_bad_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        board.parse(url, env={})
    assert "hunter2" not in str(caught.value)


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    secret = board.Board("h", 1, 0, password="hunter2")
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        board.redact_logs(secret)
        records: list[str] = []
        handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("lbswap.test").warning("connecting to redis://:%s@h:1", "hunter2")
        assert records == ["connecting to redis://:***@h:1"]
    finally:
        root.removeHandler(handler)
        handler.stream.close()


def test_rate_spaces_the_starts_across_conductors() -> None:
    rows = _rows("done", "done", "pending")
    fleet = {"parallel": 4, "rate": 6}  # one start every 10 s
    recent = (swap_key("c", "lb1"), _LeaseRow(swap_key("c", "lb1"), Holder.me(), 0.0, 1, taken=NOW - 3))
    assert _decide(rows, "lb2", recent, fleet=fleet).action == "wait"
    older = (swap_key("c", "lb1"), _LeaseRow(swap_key("c", "lb1"), Holder.me(), 0.0, 1, taken=NOW - 11))
    assert _decide(rows, "lb2", older, fleet=fleet).action == "drive"


def test_rediss_is_tls() -> None:
    tls = board.parse("rediss://h:6380/1", env={board.PASSWORD_ENV: "pw"})
    assert tls.tls and tls.conf()["ssl"] is True and tls.shown() == "rediss://:***@h:6380/1"
    assert "ssl" not in board.parse("redis://h:1", env={}).conf()


def test_no_swap_starts_while_a_process_drives_the_whole_campaign() -> None:
    rows = _rows("pending", "pending")
    resume = ("c", _LeaseRow("c", Holder.me(), NOW, 1))  # `lbswap resume` in this very process: alive
    assert _decide(rows, "lb0", resume).action == "wait"
    gone = ("c", _LeaseRow("c", Holder(Holder.me().host, 999_999_999, "gone"), NOW, 1))
    assert _decide(rows, "lb0", gone).action == "drive"


def test_a_swap_lease_is_judged_by_its_holders_own_lease_timeout(tmp_path: Path) -> None:
    """A conductor with --lease-timeout 100 that beat 10 s ago still holds its swap for a reader whose own
    timeout (the default, or another conductor's) is 4 s."""
    elsewhere = Holder("another-host", 4242, "boot:1")
    patient = _LeaseRow(swap_key("c", "lb1"), elsewhere, NOW - 10, 1, stale_after=100.0)
    rows = _rows("done", "running")
    assert decide(rows, dict([(patient.key, patient)]), "c", "lb1", FLEET, now=NOW, stale_after=STALE).action == "held"
    unrecorded = _LeaseRow(swap_key("c", "lb1"), elsewhere, NOW - 10, 1)  # a lease of schema 2: the reader's
    assert decide(rows, {unrecorded.key: unrecorded}, "c", "lb1", FLEET, now=NOW, stale_after=STALE).action == "drive"

    journal = Journal(tmp_path / "j.sqlite")
    swaps = [(f"lb{i}", {}, {}) for i in range(2)]
    journal.release_lease(journal.create_campaign("c", backend="fake:x", options={}, cloud="x", swaps=swaps))
    taken = leases.take(journal.path, "c", "lb0", stale_after=100.0)
    assert taken.action == "drive"
    with journal._tx() as db:  # as if another host's conductor held it and beat 10 s ago
        db.execute(
            "UPDATE lbswap_leases SET host='another-host', heartbeat=? WHERE campaign_id='c/lb0'", (time.time() - 10,)
        )
    with pytest.raises(LeaseHeld, match="lb0 is being driven by host another-host"):
        leases.refuse_held_swaps(journal.path, "c", stale_after=STALE)  # resume's default timeout is shorter
    with journal._tx() as db:
        db.execute("UPDATE lbswap_leases SET heartbeat=? WHERE campaign_id='c/lb0'", (time.time() - 101,))
    leases.refuse_held_swaps(journal.path, "c", stale_after=STALE)  # past the holder's own timeout: lapsed
    journal.close()


def test_max_creating_holds_across_conductors(tmp_path: Path) -> None:
    """--max-creating 1 with --parallel 3: one swap's clone is built at a time, whichever conductor holds the
    swaps; the slot is given back when the clone is ready, and freed with a lease that lapsed."""
    journal = Journal(tmp_path / "j.sqlite")
    swaps = [(f"lb{i}", {}, {}) for i in range(3)]
    options = {"fleet": {"parallel": 3, "max_creating": 1}}
    journal.release_lease(journal.create_campaign("c", backend="fake:x", options=options, cloud="x", swaps=swaps))
    taken = [leases.take(journal.path, "c", f"lb{i}", stale_after=STALE).lease for i in range(3)]
    first, second, third = [lease for lease in taken if lease is not None]
    assert leases.take_creation_slot(journal.path, first, stale_after=STALE)
    assert leases.take_creation_slot(journal.path, first, stale_after=STALE)  # held already: still its own
    assert not leases.take_creation_slot(journal.path, second, stale_after=STALE)
    leases.give_creation_slot(journal.path, first)  # first's clone is ready
    assert leases.take_creation_slot(journal.path, second, stale_after=STALE)
    assert not leases.take_creation_slot(journal.path, third, stale_after=STALE)
    leases.lapse(journal.path, second)  # its conductor gave the swap up mid-create: the slot goes with it
    assert leases.take_creation_slot(journal.path, third, stale_after=STALE)
    again = leases.take(journal.path, "c", "lb1", stale_after=STALE).lease  # another conductor takes lb1 over
    assert again is not None and again.token == second.token + 1
    with pytest.raises(StopSwap, match="lost its lease"):  # fencing: a lease taken over takes no slot
        leases.take_creation_slot(journal.path, second, stale_after=STALE)
    assert not leases.take_creation_slot(journal.path, again, stale_after=STALE)
    # the conductor's driver waits for a slot, and leaves when its swap is asked to stop
    stop = StopSwap("stopped")

    def check() -> None:
        raise stop

    slots = leases.CreationSlots(journal.path, first, check, stale_after=STALE, poll=0.0)
    with pytest.raises(StopSwap):
        slots.take("lb0")
    leases.give_creation_slot(journal.path, third)
    slots.take("lb0")
    slots.give_back("lb0")
    journal.close()
