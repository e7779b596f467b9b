"""Journal unit tests: the file, its schema and migration, campaigns and the load balancers they hold, lookups,
fencing, and the journal vanishing under a running campaign."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lbswap.errors import JournalError, LockHeld, StopSwap, StorageError
from lbswap.journal import SCHEMA_VERSION, Journal


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.db"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    j = Journal(path)
    yield j
    j.close()


def campaign(j: Journal, campaign_id: str, *lb_ids: str) -> None:
    j.create_campaign(
        campaign_id,
        backend="fake:/tmp/x",
        options={"parallel": 2},
        cloud="cloud-a",
        swaps=[(lb_id, {"strategy": "fip-swap"}, {"lb": lb_id}) for lb_id in lb_ids],
    )


def version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db, db:
        return int(db.execute("SELECT value FROM lbswap_meta WHERE key='schema_version'").fetchone()[0])


# --- the file ------------------------------------------------------------------------------------------------


def test_a_new_journal_is_created_mode_0600_at_the_current_schema(journal: Journal, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert version(path) == SCHEMA_VERSION == 3
    assert journal.campaigns() == []


def test_an_existing_journal_is_made_private_on_open(path: Path) -> None:
    Journal(path).close()
    os.chmod(path, 0o644)
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_directory_as_journal_path_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        Journal(tmp_path)


def test_a_journal_written_by_a_newer_lbswap_is_refused(path: Path) -> None:
    Journal(path).close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE lbswap_meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(JournalError, match="newer lbswap") as caught:
        Journal(path)
    assert not isinstance(caught.value, StorageError)
    assert version(path) == SCHEMA_VERSION + 1  # left as it was


def test_a_sqlite_file_without_lbswap_tables_is_refused(path: Path) -> None:
    path.parent.mkdir()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(JournalError, match="not an lbswap journal"):
        Journal(path)


def test_a_file_that_is_not_sqlite_is_called_corrupted(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"not a database, just some bytes " * 64)
    with pytest.raises(JournalError, match="corrupted") as caught:
        Journal(path)
    assert not isinstance(caught.value, StorageError)


def test_a_schema_1_journal_is_migrated(path: Path) -> None:
    path.parent.mkdir()
    with closing(sqlite3.connect(path)) as db, db:  # the schema before the cloud (I10) and the private resume data
        db.executescript(
            """
            CREATE TABLE lbswap_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE lbswap_campaigns (
                id TEXT PRIMARY KEY, backend TEXT NOT NULL, created REAL NOT NULL, options TEXT NOT NULL,
                book_uuid TEXT NOT NULL);
            CREATE TABLE lbswap_swaps (
                campaign_id TEXT NOT NULL, lb_id TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL,
                phase TEXT NOT NULL, plan TEXT NOT NULL, result TEXT NOT NULL, flows TEXT NOT NULL,
                PRIMARY KEY (campaign_id, lb_id));
            INSERT INTO lbswap_meta VALUES ('schema_version', '1');
            INSERT INTO lbswap_campaigns VALUES ('old', 'fake:/tmp/f', 1000.0, '{"parallel": 3}', '');
            INSERT INTO lbswap_swaps VALUES ('old', 'lb-1', 0, 'kept', 'forward', '{"strategy": "fip-swap"}',
                '{"clone_id": "c-1"}', '{"main": "u-1"}');
            INSERT INTO lbswap_swaps VALUES ('old', 'lb-2', 1, 'done', 'end', '{}', '{}', '{}');
            """
        )
    j = Journal(path)
    try:
        (row,) = j.campaigns()
        assert (row.id, row.backend, row.created, row.options, row.cloud) == (
            "old",
            "fake:/tmp/f",
            1000.0,
            {"parallel": 3},
            "",
        )
        assert j.campaign("old") == row
        swaps = j.swaps("old")
        assert [(s.lb_id, s.state, s.phase) for s in swaps] == [("lb-1", "kept", "forward"), ("lb-2", "done", "end")]
        assert swaps[0].result == {"clone_id": "c-1"} and swaps[0].flows == {"main": "u-1"}
        assert swaps[0].private == {}
        assert j.holder("lb-1") == "old"  # a kept swap still holds its load balancer after the migration
        swaps[0].private = {"source": {"id": "lb-1"}}
        j.save_swap(swaps[0])
        assert j.swap("old", "lb-1").private == {"source": {"id": "lb-1"}}
    finally:
        j.close()
    assert version(path) == SCHEMA_VERSION
    Journal(path).close()  # opening a migrated journal again changes nothing
    assert version(path) == SCHEMA_VERSION


# --- campaigns and the load balancers they hold --------------------------------------------------------------


def test_create_campaign_records_it_and_takes_its_load_balancers(journal: Journal) -> None:
    lease = journal.create_campaign(
        "c1",
        backend="fake:/tmp/x",
        options={"parallel": 2},
        cloud="cloud-a",
        swaps=[("lb-2", {"p": 2}, {"r": 2}), ("lb-1", {"p": 1}, {"r": 1})],
    )
    assert lease.campaign_id == "c1" and lease.token == 1
    assert journal.lease("c1") == lease
    row = journal.campaign("c1")
    assert (row.backend, row.options, row.cloud) == ("fake:/tmp/x", {"parallel": 2}, "cloud-a")
    swaps = journal.swaps("c1")
    assert [(s.lb_id, s.state, s.phase, s.plan, s.result, s.flows) for s in swaps] == [
        ("lb-2", "pending", "main", {"p": 2}, {"r": 2}, {}),  # in the order given
        ("lb-1", "pending", "main", {"p": 1}, {"r": 1}, {}),
    ]
    assert journal.holder("lb-1") == journal.holder("lb-2") == "c1"
    assert journal.holder("lb-3") is None


def test_a_second_campaign_on_a_held_load_balancer_is_refused_and_records_nothing(journal: Journal) -> None:
    campaign(journal, "c1", "lb-1")
    with pytest.raises(LockHeld) as caught:
        campaign(journal, "c2", "lb-9", "lb-1")
    assert caught.value.campaign == "c1"
    assert "lbswap resume c1" in str(caught.value)
    assert [c.id for c in journal.campaigns()] == ["c1"]
    assert journal.swaps("c2") == []
    assert journal.holder("lb-9") is None
    assert journal.lease("c2") is None


@pytest.mark.parametrize(
    ("state", "holds"),
    [
        ("pending", True),
        ("running", True),
        ("kept", True),
        ("done", False),
        ("rolled_back", False),
        ("failed", False),
        ("skipped", False),
    ],
)
def test_only_unfinished_swaps_hold_their_load_balancer(journal: Journal, state: str, holds: bool) -> None:
    campaign(journal, "c1", "lb-1")
    row = journal.swap("c1", "lb-1")
    row.state = state
    journal.save_swap(row)
    assert (journal.holder("lb-1") == "c1") is holds
    if not holds:
        campaign(journal, "c2", "lb-1")
        assert journal.holder("lb-1") == "c2"


def test_save_swap_round_trips_every_field(journal: Journal) -> None:
    campaign(journal, "c1", "lb-1")
    row = journal.swap("c1", "lb-1")
    row.state, row.phase = "running", "forward"
    row.result = {"clone_id": "c-1", "flips": [{"fip": "f"}]}
    row.flows = {"main": "u-1", "forward": "u-2"}
    row.private = {"source": {"id": "lb-1"}}
    journal.save_swap(row)
    assert journal.swap("c1", "lb-1") == row


def test_save_swap_refuses_nan(journal: Journal) -> None:
    campaign(journal, "c1", "lb-1")
    row = journal.swap("c1", "lb-1")
    row.result = {"x": float("nan")}
    with pytest.raises(ValueError, match="JSON"):
        journal.save_swap(row)
    assert journal.swap("c1", "lb-1").result == {"lb": "lb-1"}


def test_lookups_of_what_is_not_there_raise_journal_error(journal: Journal) -> None:
    campaign(journal, "c1", "lb-1")
    with pytest.raises(JournalError, match="no campaign nope"):
        journal.campaign("nope")
    with pytest.raises(JournalError, match="campaign c1 has no load balancer lb-2"):
        journal.swap("c1", "lb-2")
    with pytest.raises(JournalError, match="campaign nope has no load balancer lb-1"):
        journal.swap("nope", "lb-1")
    assert journal.swaps("nope") == []


def test_campaigns_are_listed_in_creation_order_and_survive_a_reopen(path: Path) -> None:
    j = Journal(path)
    for name in ("b", "a", "c"):
        campaign(j, name, f"lb-{name}")
    j.close()
    j = Journal(path, for_writing=False)
    try:
        assert [c.id for c in j.campaigns()] == ["b", "a", "c"]
        assert j.swap("a", "lb-a").result == {"lb": "lb-a"}
    finally:
        j.close()


# --- fencing and the journal vanishing -----------------------------------------------------------------------


def test_a_lease_taken_over_fences_the_old_one(journal: Journal) -> None:
    campaign(journal, "c1", "lb-1")
    old = journal.lease("c1")
    assert old is not None
    new = journal.take_lease("c1")  # the same process takes it again: a new token
    assert new.token == old.token + 1
    journal.check_lease(new)
    with pytest.raises(StopSwap, match="lost its lease"):
        journal.check_lease(old)
    row = journal.swap("c1", "lb-1")
    row.state = "running"
    with pytest.raises(StopSwap, match="lost its lease"):
        journal.save_swap(row, old)
    assert journal.swap("c1", "lb-1").state == "pending"
    journal.save_swap(row, new)
    assert journal.swap("c1", "lb-1").state == "running"
    assert journal.heartbeat(new) and not journal.heartbeat(old)
    journal.release_lease(new)
    assert journal.lease("c1") is None
    with pytest.raises(StopSwap, match="nobody"):
        journal.check_lease(new)


def test_check_present_passes_while_the_file_is_there(journal: Journal) -> None:
    journal.check_present()


def test_check_present_after_unlink_stops(journal: Journal, path: Path) -> None:
    path.unlink()
    with pytest.raises(StopSwap, match="deleted or replaced"):
        journal.check_present()


def test_check_present_after_replace_stops(journal: Journal, path: Path) -> None:
    replacement = path.with_suffix(".new")
    replacement.write_bytes(path.read_bytes())
    os.replace(replacement, path)
    with pytest.raises(StopSwap, match="lbswap recover"):
        journal.check_present()


# --- a journal on a database server: its address and password (no server needed) ------------------------------


def test_a_path_stays_a_sqlite_journal(tmp_path: Path) -> None:
    from lbswap.journal_db import location

    assert location(str(tmp_path / "j.sqlite")) == tmp_path / "j.sqlite"
    assert location(tmp_path / "x") == tmp_path / "x"


def test_a_server_url_and_where_its_password_comes_from(tmp_path: Path) -> None:
    from lbswap.errors import ConfigError
    from lbswap.journal_db import Server, location

    bare = location("mysql+pymysql://lbswap@db.example:3307/fleet", env={})
    assert bare == Server("mysql+pymysql", "db.example", 3307, "fleet", "lbswap")
    assert str(bare) == "mysql+pymysql://lbswap@db.example:3307/fleet"
    assert location("mysql+pymysql://lbswap@db/fleet", env={}).port == 3306  # type: ignore[union-attr]

    in_url = location("mysql+pymysql://lbswap:hunter2@db/fleet", env={})
    assert isinstance(in_url, Server) and in_url.password == "hunter2" and in_url.password_from == "url"
    assert "hunter2" not in str(in_url) + repr(in_url) and str(in_url) == "mysql+pymysql://lbswap:***@db:3306/fleet"
    assert in_url.scrub("Access denied (hunter2)") == "Access denied (***)"

    from_env = location("mysql+pymysql://lbswap:hunter2@db/fleet", env={"LBSWAP_JOURNAL_PASSWORD": "s3cret"})
    assert isinstance(from_env, Server) and (from_env.password, from_env.password_from) == ("s3cret", "env")

    secret = tmp_path / "pw"
    secret.write_text("fr0m-file\n")
    secret.chmod(0o600)
    from_file = location(
        "mysql+pymysql://lbswap@db/fleet", password_file=str(secret), env={"LBSWAP_JOURNAL_PASSWORD": "s3cret"}
    )
    assert isinstance(from_file, Server) and (from_file.password, from_file.password_from) == ("fr0m-file", "file")

    secret.chmod(0o644)
    with pytest.raises(ConfigError, match=r"--journal-password-file .*chmod 600"):
        location("mysql+pymysql://lbswap@db/fleet", password_file=str(secret), env={})
    for wrong in (
        "postgresql://u:hunter2@db/x",
        "mysql+pymysql://db/fleet",
        "mysql+pymysql://u:hunter2@db/",
        "mysql+pymysql://u:hunter2@db/fleet?ssl=1",
    ):
        with pytest.raises(ConfigError) as caught:
            location(wrong, env={})
        assert "hunter2" not in str(caught.value), wrong


def test_a_postgresql_url_and_its_password() -> None:
    from lbswap.journal_db import PostgreSQL, Server, location

    bare = location("postgresql+psycopg://lbswap@db.example/fleet", env={})
    assert bare == Server("postgresql+psycopg", "db.example", 5432, "fleet", "lbswap")
    assert isinstance(bare, Server) and isinstance(bare.dialect, PostgreSQL)
    in_url = location("postgresql+psycopg://lbswap:hunter2@db:6543/fleet", env={"LBSWAP_JOURNAL_PASSWORD": "s3cret"})
    assert isinstance(in_url, Server) and (in_url.port, in_url.password, in_url.password_from) == (
        6543,
        "s3cret",
        "env",
    )
    assert str(in_url) == "postgresql+psycopg://lbswap:***@db:6543/fleet"
    url = in_url.sqlalchemy_url()
    assert (url.drivername, url.password, dict(url.query)) == ("postgresql+psycopg", "s3cret", {})


def test_each_server_reads_sqlites_words_in_its_own() -> None:
    """The journal's statements are written once (SQLite's words); each server's dialect translates them."""
    from lbswap.journal_db import MySQL, PostgreSQL

    columns = {"lbswap_leases": {"campaign_id", "host", "token", "stale_after", "creating"}}.__getitem__
    replace = "INSERT OR REPLACE INTO lbswap_leases (campaign_id, host, token) VALUES (?, ?, ?)"
    assert MySQL().translate(replace, columns) == (
        "REPLACE INTO lbswap_leases (campaign_id, host, token) VALUES (%s, %s, %s)"
    )
    # REPLACE's row on PostgreSQL: the columns given, the others back at their defaults
    assert PostgreSQL().translate(replace, columns) == (
        "INSERT INTO lbswap_leases (campaign_id, host, token) VALUES (%s, %s, %s) ON CONFLICT ON CONSTRAINT "
        "lbswap_leases_pkey DO UPDATE SET campaign_id = EXCLUDED.campaign_id, host = EXCLUDED.host, "
        "token = EXCLUDED.token, creating = DEFAULT, stale_after = DEFAULT"
    )
    ignore = "INSERT OR IGNORE INTO lbswap_meta VALUES ('schema_version', ?)"
    assert MySQL().translate(ignore, columns) == "INSERT IGNORE INTO lbswap_meta VALUES ('schema_version', %s)"
    assert PostgreSQL().translate(ignore, columns) == (
        "INSERT INTO lbswap_meta VALUES ('schema_version', %s) ON CONFLICT DO NOTHING"
    )
    select = "SELECT value FROM lbswap_meta WHERE `key`='v' AND value LIKE '5%'"
    assert MySQL().translate(select, columns) == "SELECT value FROM lbswap_meta WHERE `key`='v' AND value LIKE '5%%'"
    assert PostgreSQL().translate(select, columns) == (
        """SELECT value FROM lbswap_meta WHERE "key"='v' AND value LIKE '5%%'"""
    )
    table = (
        "CREATE TABLE IF NOT EXISTS t (a VARCHAR(9) NOT NULL, b DOUBLE NOT NULL, c LONGTEXT NOT NULL, "
        "PRIMARY KEY (a), INDEX t_b (b, a))"
    )
    assert MySQL().create_table(table) == [table + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"]
    assert PostgreSQL().create_table(table) == [
        "CREATE TABLE IF NOT EXISTS t (a VARCHAR(9) NOT NULL, b DOUBLE PRECISION NOT NULL, c TEXT NOT NULL, "
        "PRIMARY KEY (a))",
        "CREATE INDEX IF NOT EXISTS t_b ON t (b, a)",
    ]


def test_a_server_error_is_a_stop_without_the_password() -> None:
    from lbswap.journal_db import Server, ServerError
    from lbswap.journal_storage import write_failed

    server = Server("mysql+pymysql", "db", 3306, "fleet", "lbswap", "hunter2", "env")
    stop = write_failed(server, ServerError("Lost connection to server (hunter2)"))
    assert isinstance(stop, StopSwap) and "hunter2" not in str(stop) and "lbswap resume" in str(stop)
    assert "lbswap:***@db" in str(stop)


# --- taskflow's records ----------------------------------------------------------------------------------------


def _taskflow_run(journal: Journal) -> tuple[Any, Any]:
    """A flow of three steps run by taskflow on the journal: the first provides a result, the third fails, so
    taskflow reverts the first two (every kind of atom write: states, intentions, progress, results, failures,
    revert results, the flow's states). Returns the logbook and the flow detail taskflow held in memory."""
    from taskflow import engines, task
    from taskflow.patterns import linear_flow
    from taskflow.persistence import models

    class Give(task.Task):  # type: ignore[misc]
        def execute(self) -> dict[str, Any]:
            return {"graph": {"id": "lb-1", "pools": [1, 2]}, "ratio": 0.5}

        def revert(self, **_kwargs: Any) -> str:
            return "given back"

    class Take(task.Task):  # type: ignore[misc]
        def execute(self, given: dict[str, Any]) -> None:
            assert given["ratio"] == 0.5

    class Fail(task.Task):  # type: ignore[misc]
        def execute(self) -> None:
            raise RuntimeError("the third step failed")

    flow = linear_flow.Flow("three").add(Give("give", provides="given"), Take("take"), Fail("fail"))
    connection = journal.backend.get_connection()
    book = models.LogBook("book")
    connection.save_logbook(book)
    detail = models.FlowDetail("three-main", uuid="fd-1")
    book.add(detail)
    connection.save_logbook(book)
    engine = engines.load(flow, flow_detail=detail, book=book, backend=journal.backend, store={"unused": 1})
    with pytest.raises(RuntimeError, match="third step"):
        engine.run()
    return book, detail


def test_taskflow_reads_back_every_record_it_held_in_memory(journal: Journal) -> None:
    """The journal's lean writes (no read before a write; a flow's save inserts its new atoms only) leave the
    rows taskflow's own reader returns equal to what taskflow held: resume replays from them."""
    from taskflow.persistence.backends import impl_sqlalchemy

    book, detail = _taskflow_run(journal)
    assert type(journal.backend.get_connection()).__name__ == "LeanConnection"
    stock = impl_sqlalchemy.Connection(journal.backend, journal.backend._upgrade_lock)
    stored = stock.get_logbook(book.uuid).find(detail.uuid)
    assert stored.state == detail.state == "REVERTED"
    held = {ad.name: ad.to_dict() for ad in detail}
    assert {ad.name: ad.to_dict() for ad in stored} == held
    assert held["give"]["revert_results"] == "given back" and held["give"]["results"]["ratio"] == 0.5
    assert held["give"]["meta"] == {"progress": 1.0} and held["give"]["intention"] == "REVERT"
    assert held["fail"]["failure"]["exception_str"] == "the third step failed"
    assert held["_TaskFlow_INJECTOR"]["results"] == {"unused": 1}
