"""The campaign journal: taskflow's SQLAlchemy persistence plus lbswap's own tables, in one SQLite file.

Taskflow keeps each swap's flow and atom states (what resume replays); lbswap's tables keep the campaigns,
the per-swap results an operator reads, and the lock that stops two campaigns from taking one load balancer.
Nothing here holds a secret: the backend is stored as its spec (``fake:PATH``, ``openstack:CLOUD``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbswap.errors import JournalError, LockHeld

SCHEMA_VERSION = 1
HOLDING_STATES = ("pending", "running", "kept")
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
"""


@dataclass
class SwapRow:
    campaign_id: str
    lb_id: str
    state: str
    phase: str  # "main" (reversible part), "forward" (retire onwards), "end"
    plan: dict[str, Any]
    result: dict[str, Any]
    flows: dict[str, str]  # phase -> taskflow flow detail uuid


@dataclass
class CampaignRow:
    id: str
    backend: str
    created: float
    options: dict[str, Any]
    book_uuid: str


class Journal:
    """One journal file. Creates it (mode 0600) when missing.

    :raises JournalError: the file is not an lbswap journal, is corrupted, or was written by a newer lbswap.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._backend: Any = None
        existed = self.path.exists() and self.path.stat().st_size > 0
        if not existed:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        try:
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            _sqlite_pragmas(self._db, None)
            if existed:
                self._check_version()
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO lbswap_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"journal {self.path} is corrupted or not an lbswap journal ({exc}): "
                "move it aside and name another with --journal"
            ) from None

    def _check_version(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "lbswap_meta" not in tables:
            raise JournalError(
                f"journal {self.path} is not an lbswap journal (no lbswap tables): name another with --journal"
            )
        row = self._db.execute("SELECT value FROM lbswap_meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} was written by a newer lbswap (journal schema {version}, this lbswap "
                f"reads up to {SCHEMA_VERSION}): upgrade lbswap to resume its campaigns"
            )

    # --- taskflow persistence ----------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        """Taskflow's SQLAlchemy persistence backend on this file (created lazily: it imports taskflow)."""
        with self._lock:
            if self._backend is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    backend = _taskflow_backend(self.path)
                try:
                    backend.get_connection().upgrade()
                except Exception as exc:  # sqlalchemy and alembic errors: the file is not usable
                    raise JournalError(f"journal {self.path}: cannot prepare the taskflow tables ({exc})") from None
                self._backend = backend
            return self._backend

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
            self._db.close()

    # --- lbswap tables ----------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def create_campaign(
        self,
        campaign_id: str,
        *,
        backend: str,
        options: dict[str, Any],
        book_uuid: str,
        swaps: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    ) -> None:
        """Record a campaign and take its load balancers, atomically.

        :raises LockHeld: another unfinished campaign holds one of them; nothing is recorded.
        """
        with self._tx() as db:  # BEGIN IMMEDIATE: the check and the insert are one atomic step
            self.check_free([lb_id for lb_id, _plan, _result in swaps])
            db.execute(
                "INSERT INTO lbswap_campaigns VALUES (?, ?, ?, ?, ?)",
                (campaign_id, backend, time.time(), json.dumps(options), book_uuid),
            )
            for position, (lb_id, plan, result) in enumerate(swaps):
                db.execute(
                    "INSERT INTO lbswap_swaps VALUES (?, ?, ?, 'pending', 'main', ?, ?, '{}')",
                    (campaign_id, lb_id, position, json.dumps(plan), json.dumps(result)),
                )

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
            rows = self._db.execute("SELECT * FROM lbswap_campaigns ORDER BY created").fetchall()
        return [CampaignRow(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def campaign(self, campaign_id: str) -> CampaignRow:
        for row in self.campaigns():
            if row.id == campaign_id:
                return row
        raise JournalError(f"no campaign {campaign_id} in journal {self.path}: see `lbswap status`")

    def swaps(self, campaign_id: str) -> list[SwapRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT campaign_id, lb_id, state, phase, plan, result, flows FROM lbswap_swaps "
                "WHERE campaign_id=? ORDER BY position",
                (campaign_id,),
            ).fetchall()
        return [SwapRow(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), json.loads(r[6])) for r in rows]

    def swap(self, campaign_id: str, lb_id: str) -> SwapRow:
        for row in self.swaps(campaign_id):
            if row.lb_id == lb_id:
                return row
        raise JournalError(f"campaign {campaign_id} has no load balancer {lb_id}: see `lbswap status {campaign_id}`")

    def save_swap(self, row: SwapRow) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE lbswap_swaps SET state=?, phase=?, result=?, flows=? WHERE campaign_id=? AND lb_id=?",
                (row.state, row.phase, json.dumps(row.result), json.dumps(row.flows), row.campaign_id, row.lb_id),
            )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a commit survives the process being killed (what resume is for), without
    # an fsync per taskflow state change; only a power loss can drop the last commits, which resume re-runs.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _taskflow_backend(path: Path) -> Any:
    """taskflow's SQLAlchemy backend on ``path``, with a pooled engine and one ``Connection`` for its life.

    taskflow by itself opens a new SQLite connection (NullPool) and builds a new ``Connection`` (new table
    objects, so every statement is compiled again) for each storage operation: that was most of lbswap's CPU
    per swap. The ``Connection`` holds no per-call state (each operation checks an engine connection out of
    the pool), so sharing it between the threads of parallel swaps is safe.
    """
    import sqlalchemy as sa
    from taskflow.persistence.backends import impl_sqlalchemy

    class Backend(impl_sqlalchemy.SQLAlchemyBackend):  # type: ignore[misc]
        _shared: Any = None

        def get_connection(self) -> Any:
            if self._shared is None:
                self._shared = super().get_connection()
            return self._shared

        def close(self) -> None:
            self._shared = None
            super().close()
            self.engine.dispose()

    engine = sa.create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_size=8,
        max_overflow=32,
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return Backend({"connection": f"sqlite:///{path}"}, engine=engine)
