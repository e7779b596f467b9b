"""The journal on MariaDB itself: a connection lost mid-campaign (the server restarted, a network cut) stops
the write at hand as a full disk does, with the password masked, and the next call connects again."""

from __future__ import annotations

import time

import pytest

from lbswap.errors import StopSwap, StorageError
from lbswap.journal import Journal
from lbswap.journal_db import location
from lbswap.scaleout import leases
from tests.scaleout.conftest import SharedJournal

pytestmark = pytest.mark.scaleout


def test_a_lost_connection_stops_the_write_then_reconnects(shared_journal: SharedJournal) -> None:
    server = location(shared_journal.url, password_file=str(shared_journal.password_file))
    journal = Journal(server)
    try:
        swaps = [(f"lb{i}", {}, {}) for i in range(2)]
        lease = journal.create_campaign("c", backend="fake:x", options={"fleet": {}}, cloud="x", swaps=swaps)
        (connection_id,) = journal._db.execute("SELECT CONNECTION_ID()").fetchone()
        shared_journal.query(f"KILL CONNECTION {int(connection_id)}")  # as a restarted server would
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


def test_the_journal_on_a_server_that_is_not_there_is_one_line() -> None:
    """Here, not in tier 1: it needs pymysql, which the scale-out tier installs (no skip where it is absent)."""
    from lbswap.journal_db import Server

    server = Server("mysql+pymysql", "127.0.0.1", 1, "fleet", "lbswap", "hunter2", "env")  # nothing listens on 1
    with pytest.raises(StorageError) as caught:
        Journal(server)
    text = str(caught.value)
    assert "database server failed" in text and "hunter2" not in text and "\n" not in text
