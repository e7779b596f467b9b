"""The journal on MariaDB and on PostgreSQL itself: a connection lost mid-campaign (the server restarted, a
network cut) stops the write at hand as a full disk does, with the password masked, and the next call connects
again."""

from __future__ import annotations

import time

import pytest

from lbswap import journal_db
from lbswap.errors import StopSwap, StorageError
from lbswap.journal import Journal
from lbswap.journal_db import location
from lbswap.journal_storage import storage_cause
from lbswap.scaleout import leases
from tests.scaleout.conftest import SharedJournal

pytestmark = pytest.mark.scaleout


def test_a_lost_connection_stops_the_write_then_reconnects(shared_journal: SharedJournal) -> None:
    server = location(shared_journal.url, password_file=str(shared_journal.password_file))
    journal = Journal(server)
    try:
        swaps = [(f"lb{i}", {}, {}) for i in range(2)]
        lease = journal.create_campaign("c", backend="fake:x", options={"fleet": {}}, cloud="x", swaps=swaps)
        shared_journal.kill(shared_journal.connection_id(journal))  # as a restarted server would
        time.sleep(0.2)  # the kill is asynchronous on the server's side
        with pytest.raises(StopSwap) as caught:
            journal.heartbeat(lease)
        text = str(caught.value)
        assert "a write failed" in text and "lbswap resume" in text, text
        assert shared_journal.password not in text and f"{shared_journal.user}:***@" in text, text
        assert journal.heartbeat(lease)  # connected again
        assert [s.lb_id for s in journal.swaps("c")] == ["lb0", "lb1"]
        journal.release_lease(lease)
        assert leases.take(journal.path, "c", "lb0", stale_after=4.0).action == "drive"
    finally:
        journal.close()
        journal_db.shared(server).close()  # the connection leases.take kept for this thread


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "postgresql+psycopg"])
def test_the_journal_on_a_server_that_is_not_there_is_one_line(scheme: str) -> None:
    """Here, not in tier 1: it needs pymysql and psycopg, which the scale-out tier installs (no skip where they
    are absent)."""
    from lbswap.journal_db import Server

    server = Server(scheme, "127.0.0.1", 1, "fleet", "lbswap", "hunter2", "env")  # nothing listens on 1
    with pytest.raises(StorageError) as caught:
        Journal(server)
    text = str(caught.value)
    assert "database server failed" in text and "hunter2" not in text and "\n" not in text


def test_a_stopped_writer_holds_the_lock_no_longer_than_the_idle_timeout(
    shared_journal: SharedJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped (SIGSTOP) inside a write transaction: the server ends that transaction once it idled
    IDLE_TRANSACTION_SECONDS (here 1 s), so the other writers go on; the stopped one, running again, finds its
    write failed and connects again."""
    monkeypatch.setattr(journal_db, "IDLE_TRANSACTION_SECONDS", 1)
    monkeypatch.setattr(journal_db, "LOCK_WAIT_SECONDS", 20)
    server = location(shared_journal.url, password_file=str(shared_journal.password_file))
    Journal(server).close()  # the tables
    holder, other = journal_db.Database(server), journal_db.Database(server)
    try:
        writing = holder.write()
        writing.__enter__()  # lbswap_lock's row locked, then nothing more: as a stopped process
        started = time.monotonic()
        with other.write() as db:
            db.execute("UPDATE lbswap_lock SET n = n + 1 WHERE id = 1")
        waited = time.monotonic() - started
        assert 0.5 < waited < 10, waited  # waited for the idle timeout, not for the lock wait's 20 s
        with pytest.raises(journal_db.ServerError):
            writing.__exit__(None, None, None)  # its COMMIT: the server ended the transaction and the connection
        assert holder.execute("SELECT n FROM lbswap_lock WHERE id = 1").fetchone()[0] == 1  # connected again
    finally:
        holder.close()
        other.close()


def test_a_writer_waits_for_the_lock_at_most_the_lock_wait(
    shared_journal: SharedJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that waits LOCK_WAIT_SECONDS (here 1 s) for the lock row stops at the step boundary, as on a
    full disk; the next write, once the lock is free, goes through."""
    monkeypatch.setattr(journal_db, "LOCK_WAIT_SECONDS", 1)
    server = location(shared_journal.url, password_file=str(shared_journal.password_file))
    journal = Journal(server)
    holder = journal_db.Database(server)
    try:
        lease = journal.create_campaign("c", backend="fake:x", options={"fleet": {}}, cloud="x", swaps=[])
        with holder.write():
            started = time.monotonic()
            with pytest.raises(StopSwap) as caught:
                journal.heartbeat(lease)
            waited = time.monotonic() - started
        assert 0.5 < waited < 10, waited
        text = str(caught.value)
        assert "a write failed" in text and storage_cause(caught.value), text  # told as a storage failure
        assert journal.heartbeat(lease)
    finally:
        holder.close()
        journal.close()
