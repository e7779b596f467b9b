"""The campaign journal: taskflow's SQLAlchemy persistence plus lbswap's own tables, in one SQLite file or
one database on a MariaDB/MySQL or PostgreSQL server shared by conductors on several hosts
(:mod:`lbswap.journal_db`).

Taskflow keeps each swap's flow and atom states (what resume replays); lbswap's tables keep the campaigns,
the per-swap results an operator reads, and the lock that stops two campaigns from taking one load balancer.
Nothing here holds a secret: the backend is stored as its spec (``fake:PATH``, ``openstack:CLOUD``), and a
server's password stays in memory (:class:`lbswap.journal_db.Server`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lbswap.errors import JournalError, LeaseHeld, LockHeld, StopSwap, StorageError
from lbswap.journal_db import Database, Location, Server, location, storage_error
from lbswap.journal_lease import HEARTBEAT_SECONDS, LEASE_TIMEOUT, Holder, Lease, holder_alive
from lbswap.journal_storage import (
    MIN_FREE_BYTES,
    check_writable,
    database_error,
    sqlite_pragmas,
    storage_cause,
    taskflow_backend,
    taskflow_server_backend,
    write_failed,
)
from lbswap.state import HOLDING

# what callers import from here (leases and storage live in journal_lease and journal_storage)
__all__ = [
    "HEARTBEAT_SECONDS",
    "LEASE_TIMEOUT",
    "MIN_FREE_BYTES",
    "CampaignRow",
    "Holder",
    "Journal",
    "Lease",
    "SwapRow",
    "check_writable",
    "storage_cause",
]

SCHEMA_VERSION = 3
HOLDING_STATES = tuple(str(state) for state in HOLDING)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS lbswap_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lbswap_campaigns (
    id TEXT PRIMARY KEY, backend TEXT NOT NULL, created REAL NOT NULL, options TEXT NOT NULL,
    book_uuid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lbswap_swaps (
    campaign_id TEXT NOT NULL, lb_id TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL,
    phase TEXT NOT NULL, plan TEXT NOT NULL, result TEXT NOT NULL, flows TEXT NOT NULL,
    PRIMARY KEY (campaign_id, lb_id));
CREATE INDEX IF NOT EXISTS lbswap_swaps_lb ON lbswap_swaps (lb_id, state);
CREATE TABLE IF NOT EXISTS lbswap_leases (
    campaign_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, proc_start TEXT NOT NULL,
    taken REAL NOT NULL, heartbeat REAL NOT NULL, token INTEGER NOT NULL,
    stale_after REAL NOT NULL DEFAULT 0, creating INTEGER NOT NULL DEFAULT 0);
"""
# the same tables on a database server (created at the current schema: no server journal had schema 1), in
# MariaDB's words (journal_db's dialect of each server translates them); ``lbswap_lock``'s one row is what a write
# transaction locks (journal_db.Database.write)
_SERVER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lbswap_meta (`key` VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lbswap_lock (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO lbswap_lock VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS lbswap_campaigns (id VARCHAR(191) PRIMARY KEY, backend TEXT NOT NULL, "
    "created DOUBLE NOT NULL, options LONGTEXT NOT NULL, book_uuid VARCHAR(64) NOT NULL, "
    "cloud VARCHAR(1024) NOT NULL DEFAULT '')",
    "CREATE TABLE IF NOT EXISTS lbswap_swaps (campaign_id VARCHAR(191) NOT NULL, lb_id VARCHAR(191) NOT NULL, "
    "position INTEGER NOT NULL, state VARCHAR(32) NOT NULL, phase VARCHAR(32) NOT NULL, plan LONGTEXT NOT NULL, "
    "result LONGTEXT NOT NULL, flows TEXT NOT NULL, private LONGTEXT NOT NULL, PRIMARY KEY (campaign_id, lb_id), "
    "INDEX lbswap_swaps_lb (lb_id, state))",
    "CREATE TABLE IF NOT EXISTS lbswap_leases (campaign_id VARCHAR(255) PRIMARY KEY, host VARCHAR(255) NOT NULL, "
    "pid INTEGER NOT NULL, proc_start VARCHAR(255) NOT NULL, taken DOUBLE NOT NULL, heartbeat DOUBLE NOT NULL, "
    "token INTEGER NOT NULL, stale_after DOUBLE NOT NULL DEFAULT 0, creating INTEGER NOT NULL DEFAULT 0)",
)
# schema 1 -> 2: the cloud a campaign belongs to (I10), and per-swap resume data kept apart from the result
_MIGRATIONS = {
    2: (
        "ALTER TABLE lbswap_campaigns ADD COLUMN cloud TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE lbswap_swaps ADD COLUMN private TEXT NOT NULL DEFAULT '{}'",
    ),
    # a swap's lease: its holder's own lease timeout, and whether it holds a creation slot (--max-creating)
    3: (
        "ALTER TABLE lbswap_leases ADD COLUMN stale_after REAL NOT NULL DEFAULT 0",
        "ALTER TABLE lbswap_leases ADD COLUMN creating INTEGER NOT NULL DEFAULT 0",
    ),
}


@dataclass
class SwapRow:
    campaign_id: str
    lb_id: str
    state: str
    phase: str  # "main" (reversible part), "forward" (retire onwards), "end"
    plan: dict[str, Any]
    result: dict[str, Any]
    flows: dict[str, str]  # phase -> taskflow flow detail uuid
    private: dict[str, Any] = field(default_factory=dict)  # resume data (the snapshot), never shown


@dataclass
class CampaignRow:
    id: str
    backend: str
    created: float
    options: dict[str, Any]
    book_uuid: str
    cloud: str = ""  # the cloud's identity (Cloud.identity()), empty for campaigns of schema 1


class Journal:
    """One journal: a file (created with mode 0600 when missing) or a database on a server
    (``mysql+pymysql://``, ``postgresql+psycopg://``; its tables created when missing).

    :raises JournalError: the file is not an lbswap journal, is corrupted, or was written by a newer lbswap.
    :raises StorageError: the file cannot be written, or the server cannot be reached or refuses the login.
    """

    def __init__(self, path: str | os.PathLike[str] | Server, *, for_writing: bool = True) -> None:
        where: Location = path if isinstance(path, Server) else location(path)
        self.path: Location = where
        self._lock = threading.RLock()
        self._backend: Any = None
        if isinstance(where, Server):
            self._open_server(where)
            return
        if where.is_dir():
            raise StorageError(f"journal {where} is a directory: name a file with --journal")
        existed = where.exists() and where.stat().st_size > 0
        try:
            if not existed:
                where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.close(os.open(where, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(where, 0o600)
        except OSError as exc:
            raise StorageError(
                f"journal {where}: cannot create or open it ({exc.strerror}): "
                "fix the directory's permissions or name another with --journal"
            ) from None
        if for_writing:
            check_writable(where)
        stat = where.stat()
        self._file_id = (stat.st_dev, stat.st_ino)
        try:  # one process at a time sets up a journal (two creating it at once raced: SQLite I/O errors)
            with self._setup_lock():
                self._db = Database(where)
                sqlite_pragmas(self._db.sqlite, None)
                if existed:
                    self._check_version()
                if not existed or not self._current():  # a journal in use is only read here (status)
                    self._db.sqlite.executescript(_SCHEMA)
                    self._db.execute(
                        "INSERT OR IGNORE INTO lbswap_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
                    self._migrate()
        except sqlite3.DatabaseError as exc:
            raise database_error(where, exc) from None

    def _open_server(self, server: Server) -> None:
        try:
            self._db = Database(server)
            with self._db.setup_lock():
                self._check_version()
                if not self._current():
                    for statement in _SERVER_SCHEMA:
                        if statement.startswith("CREATE TABLE"):
                            self._db.create_table(statement)
                        else:
                            self._db.execute(statement)
                    self._db.execute(
                        "INSERT OR IGNORE INTO lbswap_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
        except sqlite3.DatabaseError as exc:  # journal_db.ServerError: down, refused login, no such database
            raise storage_error(server, exc) from None

    def _check_version(self) -> None:
        tables = self._db.tables()
        if not tables and isinstance(self.path, Server):
            return  # an empty database: lbswap creates its tables
        if "lbswap_meta" not in tables:
            raise JournalError(
                f"journal {self.path} is not an lbswap journal (no lbswap tables): name another with --journal"
            )
        row = self._db.execute("SELECT value FROM lbswap_meta WHERE `key`='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} was written by a newer lbswap (journal schema {version}, this lbswap "
                f"reads up to {SCHEMA_VERSION}): upgrade lbswap to resume its campaigns"
            )

    def _current(self) -> bool:
        """Every lbswap table exists, at this schema version: nothing to create or migrate."""
        tables = self._db.tables()
        if not {"lbswap_meta", "lbswap_campaigns", "lbswap_swaps", "lbswap_leases"} <= tables:
            return False
        if isinstance(self.path, Server) and "lbswap_lock" not in tables:
            return False
        row = self._db.execute("SELECT value FROM lbswap_meta WHERE `key`='schema_version'").fetchone()
        return row is not None and int(row[0]) == SCHEMA_VERSION

    def _migrate(self) -> None:
        row = self._db.execute("SELECT value FROM lbswap_meta WHERE `key`='schema_version'").fetchone()
        version = int(row[0])
        columns = self._db.columns("lbswap_campaigns")
        for target in sorted(_MIGRATIONS):
            if version < target or (target == 2 and "cloud" not in columns):
                for statement in _MIGRATIONS[target]:  # ALTER TABLE t ADD COLUMN c ...: once per column
                    words = statement.split()
                    if words[5] not in self._db.columns(words[2]):
                        self._db.execute(statement)
                version = target
        self._db.execute("UPDATE lbswap_meta SET value=? WHERE `key`='schema_version'", (str(SCHEMA_VERSION),))

    def check_present(self) -> None:
        """The journal file is still the one this process opened.

        :raises StopSwap: it was deleted or replaced: stop before the next step (`lbswap recover` rebuilds
            unfinished swaps from the cloud's marker tags).

        A journal on a server has no file: a lost connection shows as a failed read or write (a stop too).
        """
        if isinstance(self.path, Server):
            return
        try:
            stat = self.path.stat()
        except OSError:
            stat = None
        if stat is None or (stat.st_dev, stat.st_ino) != self._file_id:
            raise StopSwap(
                f"journal {self.path} was deleted or replaced while a campaign ran: stopped; "
                "`lbswap recover` finishes or rolls back unfinished swaps from the cloud's marker tags"
            )

    # --- taskflow persistence ----------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        """Taskflow's SQLAlchemy persistence backend on this journal (created lazily: it imports taskflow)."""
        with self._lock:
            if self._backend is None:
                on_commit = _crash_point if _CRASH_AT else None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    if isinstance(self.path, Server):
                        backend = taskflow_server_backend(self.path, on_commit=on_commit)
                    else:
                        backend = taskflow_backend(self.path, on_commit=on_commit)
                try:
                    with self._setup_lock():  # two processes creating the tables at once race
                        if not self._taskflow_ready():  # schema changes only where they are needed
                            backend.get_connection().upgrade()
                except Exception as exc:  # sqlalchemy and alembic errors: the file is not usable
                    cause = storage_cause(exc)
                    if cause:
                        raise StorageError(
                            f"journal {self.path}: cannot write ({cause}): free space or fix the disk, then retry"
                        ) from None
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    if isinstance(self.path, Server):
                        first = self.path.scrub(first)
                    raise JournalError(f"journal {self.path}: cannot prepare the taskflow tables ({first})") from None
                self._backend = backend
            return self._backend

    @contextmanager
    def _setup_lock(self) -> Iterator[None]:
        """One process at a time sets up the journal's tables. A lock file of its own: SQLite's POSIX locks on
        the journal are dropped when this process closes any other descriptor of that file. On a server: a
        named lock of the server's."""
        if isinstance(self.path, Server):
            with self._lock, self._db.setup_lock():
                yield
            return
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _taskflow_ready(self) -> bool:
        """taskflow's tables exist, at a version this taskflow wrote (no migration to run)."""
        with self._lock:
            tables = self._db.tables()
            if not {"logbooks", "flowdetails", "atomdetails", "alembic_version"} <= tables:
                return False
            count: int = self._db.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
            return count == 1

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
            self._db.close()

    # --- lbswap tables ----------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Database]:
        with self._lock:
            try:
                with self._db.write() as db:  # BEGIN IMMEDIATE, or the server's lock row FOR UPDATE
                    yield db
            except sqlite3.OperationalError as exc:
                raise write_failed(self.path, exc) from None
            _crash_point()

    def create_campaign(
        self,
        campaign_id: str,
        *,
        backend: str,
        options: dict[str, Any],
        cloud: str,
        swaps: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    ) -> Lease:
        """Record a campaign, take its load balancers and its lease, atomically.

        :raises LockHeld: another unfinished campaign holds one of them; nothing is recorded.
        """
        with self._tx() as db:  # a write transaction: the check and the insert are one atomic step
            self.check_free([lb_id for lb_id, _plan, _result in swaps])
            db.execute(
                "INSERT INTO lbswap_campaigns (id, backend, created, options, book_uuid, cloud) "
                "VALUES (?, ?, ?, ?, '', ?)",
                (campaign_id, backend, time.time(), json.dumps(options), cloud),
            )
            for position, (lb_id, plan, result) in enumerate(swaps):
                db.execute(
                    "INSERT INTO lbswap_swaps (campaign_id, lb_id, position, state, phase, plan, result, flows, "
                    "private) VALUES (?, ?, ?, 'pending', 'main', ?, ?, '{}', '{}')",
                    (campaign_id, lb_id, position, json.dumps(plan), json.dumps(result)),
                )
            return self._take(db, campaign_id)

    # --- leases: one driver per campaign (I9) -----------------------------------------------------------

    def take_lease(self, campaign_id: str) -> Lease:
        """Take the campaign's lease for this process, in one atomic write.

        A lease whose holder is gone is taken over: on this host, its process no longer runs; on another
        host, it sent no heartbeat for ``LEASE_TIMEOUT`` seconds.

        :raises LeaseHeld: a live process holds it; names that process and since when.
        """
        with self._tx() as db:
            return self._take(db, campaign_id)

    def _take(self, db: Database, campaign_id: str) -> Lease:
        me, now = Holder.me(), time.time()
        current = self._lease(db, campaign_id)
        if current is not None and current.holder != me and holder_alive(current, now):
            raise LeaseHeld(
                f"campaign {campaign_id} is being driven by {current.describe()}: wait for it to end, or stop "
                "that process (an interrupted one is taken over)"
            )
        token = (current.token if current else 0) + 1
        db.execute(
            "INSERT OR REPLACE INTO lbswap_leases (campaign_id, host, pid, proc_start, taken, heartbeat, token) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (campaign_id, me.host, me.pid, me.proc_start, now, now, token),
        )
        return Lease(campaign_id, me, now, now, token)

    def lease(self, campaign_id: str) -> Lease | None:
        with self._lock:
            return self._lease(self._db, campaign_id)

    @staticmethod
    def _lease(db: Database, campaign_id: str) -> Lease | None:
        row = db.execute(
            "SELECT host, pid, proc_start, taken, heartbeat, token FROM lbswap_leases WHERE campaign_id=?",
            (campaign_id,),
        ).fetchone()
        if row is None:
            return None
        return Lease(campaign_id, Holder(row[0], int(row[1]), row[2]), row[3], row[4], int(row[5]))

    def check_lease(self, lease: Lease) -> None:
        """Fencing: the lease is still this one.

        :raises StopSwap: another process took it over (this one was paused or partitioned): act no more.
        """
        self.check_present()
        try:
            current = self.lease(lease.campaign_id)
        except sqlite3.DatabaseError as exc:
            raise StopSwap(f"journal {self.path}: cannot read the campaign's lease ({exc}): stopped") from None
        if current is None or current.token != lease.token:
            who = current.describe() if current else "nobody (released)"
            raise StopSwap(
                f"campaign {lease.campaign_id}: this process lost its lease to {who}; it stopped without acting"
            )

    def heartbeat(self, lease: Lease) -> bool:
        """Renew the lease; False when it is no longer this process's."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE lbswap_leases SET heartbeat=? WHERE campaign_id=? AND token=?",
                (time.time(), lease.campaign_id, lease.token),
            )
            return bool(cursor.rowcount == 1)

    def release_lease(self, lease: Lease) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM lbswap_leases WHERE campaign_id=? AND token=?", (lease.campaign_id, lease.token))

    def holder(self, lb_id: str) -> str | None:
        """The unfinished campaign that holds a load balancer, if any."""
        with self._lock:
            row = self._db.execute(
                f"SELECT campaign_id FROM lbswap_swaps WHERE lb_id=? AND state IN {HOLDING_STATES!r}",  # noqa: S608
                (lb_id,),
            ).fetchone()
        return str(row[0]) if row else None

    def check_free(self, lb_ids: Sequence[str]) -> None:
        """:raises LockHeld: naming the first load balancer an unfinished campaign holds."""
        for lb_id in lb_ids:
            campaign = self.holder(lb_id)
            if campaign:
                raise LockHeld(
                    f"campaign {campaign} still holds it: finish it with `lbswap resume {campaign}` "
                    f"or `lbswap rollback {campaign}`",
                    lb=lb_id,
                    campaign=campaign,
                )

    def campaigns(self) -> list[CampaignRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, backend, created, options, book_uuid, cloud FROM lbswap_campaigns ORDER BY created"
            ).fetchall()
        return [CampaignRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def campaign(self, campaign_id: str) -> CampaignRow:
        with self._lock:
            r = self._db.execute(
                "SELECT id, backend, created, options, book_uuid, cloud FROM lbswap_campaigns WHERE id=?",
                (campaign_id,),
            ).fetchone()
        if r is None:
            raise JournalError(f"no campaign {campaign_id} in journal {self.path}: see `lbswap status`")
        return CampaignRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5])

    def swaps(self, campaign_id: str) -> list[SwapRow]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_SWAP_COLUMNS} FROM lbswap_swaps WHERE campaign_id=? ORDER BY position",  # noqa: S608
                (campaign_id,),
            ).fetchall()
        return [_swap_row(r) for r in rows]

    def swap(self, campaign_id: str, lb_id: str) -> SwapRow:
        with self._lock:
            r = self._db.execute(
                f"SELECT {_SWAP_COLUMNS} FROM lbswap_swaps WHERE campaign_id=? AND lb_id=?",  # noqa: S608
                (campaign_id, lb_id),
            ).fetchone()
        if r is None:
            raise JournalError(
                f"campaign {campaign_id} has no load balancer {lb_id}: see `lbswap status {campaign_id}`"
            )
        return _swap_row(r)

    def save_swap(self, row: SwapRow, lease: Lease | None = None) -> None:
        """Write a swap's row; with ``lease``, only while that lease is still held (fencing).

        :raises StopSwap: the lease was taken over, or the journal cannot be written (disk full).
        """
        with self._tx() as db:
            if lease is not None:
                current = self._lease(db, lease.campaign_id)
                if current is None or current.token != lease.token:
                    raise StopSwap(f"campaign {lease.campaign_id}: this process lost its lease; it stopped")
            db.execute(
                "UPDATE lbswap_swaps SET state=?, phase=?, result=?, flows=?, private=? "
                "WHERE campaign_id=? AND lb_id=?",
                (
                    row.state,
                    row.phase,
                    json.dumps(row.result, allow_nan=False),
                    json.dumps(row.flows),
                    json.dumps(row.private, allow_nan=False),
                    row.campaign_id,
                    row.lb_id,
                ),
            )


_SWAP_COLUMNS = "campaign_id, lb_id, state, phase, plan, result, flows, private"


def _swap_row(r: Sequence[Any]) -> SwapRow:
    return SwapRow(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), json.loads(r[6]), json.loads(r[7]))


_writes = 0
_CRASH_AT = int(os.environ.get("LBSWAP_TEST_CRASH_AT_JOURNAL_WRITE", "0") or 0)


def _crash_point() -> None:
    """Test hook: with LBSWAP_TEST_CRASH_AT_JOURNAL_WRITE=N the process dies (exit 137) right after the Nth
    journal commit of any kind (lbswap's tables or taskflow's), as a SIGKILL or a power loss would."""
    global _writes
    if _CRASH_AT:
        _writes += 1
        if _writes == _CRASH_AT:
            os._exit(137)
