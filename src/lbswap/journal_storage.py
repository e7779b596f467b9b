"""The journal's storage: its SQLite connections (pragmas, taskflow's pooled backend), room and permissions
checked before a run, and a storage failure (full disk, read-only, I/O error) told apart from corruption.
On a database server: taskflow's pooled backend there, and a lost server told as a storage failure (a stop at
the step boundary, as a full disk is; `lbswap resume` continues once the server is back)."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbswap.errors import JournalError, StopSwap, StorageError
from lbswap.journal_db import STORAGE_WORDS, Server

MIN_FREE_BYTES = 2 * 1024 * 1024  # below this a run does not start: a campaign must be able to record itself

_STORAGE_WORDS = (
    "disk is full",
    "database or disk",
    "readonly",
    "read-only",
    "disk i/o",
    "unable to open",
    # a journal's server lost or down, or its lock waited for too long (the clients' words)
    *STORAGE_WORDS,
)


def storage_cause(exc: BaseException) -> str | None:
    """The first line of a storage failure (full disk, read-only, I/O error) anywhere in the exception's chain
    (taskflow wraps sqlalchemy, which wraps sqlite), or None."""
    seen: BaseException | None = exc
    for _depth in range(10):
        if seen is None:
            return None
        text = str(seen).lower()
        for word in _STORAGE_WORDS:
            if word in text:
                return word if len(text) > 200 else str(seen).splitlines()[0]
        seen = seen.__cause__ or seen.__context__
    return None


def check_writable(path: Path) -> None:
    """Before any change: the journal's directory takes writes and its disk has room.

    :raises StorageError: one line saying what and what to do.
    """
    directory = path.parent
    if not os.access(directory, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StorageError(
            f"journal {path}: {'the file' if path.exists() else 'its directory'} is not writable: "
            "fix the permissions or name another with --journal"
        )
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise StorageError(
            f"journal {path}: its disk has {free // 1024} KiB free (lbswap needs {MIN_FREE_BYTES // 1048576} MiB "
            "to record a campaign): free space, or name a journal on another disk with --journal"
        )


def database_error(path: Path, exc: sqlite3.DatabaseError) -> JournalError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StorageError(
            f"journal {path} is busy: another lbswap process holds it locked ({exc}); retry once it is done"
        )
    if "full" in text or "readonly" in text or "read-only" in text or "unable to open" in text or "i/o" in text:
        return StorageError(f"journal {path}: cannot write ({exc}): free space or fix permissions, then retry")
    return JournalError(
        f"journal {path} is corrupted or not an lbswap journal ({exc}): move it aside and name another with --journal"
    )


def write_failed(path: Path | Server, exc: sqlite3.OperationalError) -> StopSwap:
    """A journal write failed mid-campaign (disk full, read-only, the server lost): stop driving; resume once
    it is fixed."""
    if isinstance(path, Server):
        return StopSwap(
            f"journal {path}: a write failed ({path.scrub(str(exc))}): stopped; once the database server is "
            "back, `lbswap resume` (or the conductors) continue"
        )
    return StopSwap(
        f"journal {path}: a write failed ({exc}): stopped; free space or fix the disk, then `lbswap resume`"
    )


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a commit survives the process being killed (what resume is for), without
    # an fsync per taskflow state change; only a power loss can drop the last commits, which resume re-runs.
    mode = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
    if not mode or str(mode[0]).lower() != "wal":  # switching needs the file to itself: only when it is not yet
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


@functools.cache
def _shared_backend() -> Any:
    """taskflow's SQLAlchemy backend with one ``Connection`` for its life (imported on first use: taskflow is slow
    to import), closed with its engine."""
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

    return Backend


def taskflow_backend(path: Path, *, on_commit: Callable[[], None] | None = None) -> Any:
    """taskflow's SQLAlchemy backend on ``path``, with a pooled engine and one ``Connection`` for its life.

    taskflow by itself opens a new SQLite connection (NullPool) and builds a new ``Connection`` (new table
    objects, so every statement is compiled again) for each storage operation: that was most of lbswap's CPU
    per swap. The ``Connection`` holds no per-call state (each operation checks an engine connection out of
    the pool), so sharing it between the threads of parallel swaps is safe. ``on_commit`` runs after each commit.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_size=8,
        max_overflow=32,
    )
    sa.event.listen(engine, "connect", sqlite_pragmas)
    if on_commit is not None:  # the journal's crash test hook
        sa.event.listen(engine, "commit", lambda _conn: on_commit())
    return _shared_backend()({"connection": f"sqlite:///{path}"}, engine=engine)


def taskflow_server_backend(server: Server, *, on_commit: Callable[[], None] | None = None) -> Any:
    """taskflow's SQLAlchemy backend on a database server's journal (its own alembic migrations create its
    tables), pooled and with one ``Connection`` for its life as :func:`taskflow_backend`. Connections are
    checked before use (a server restarted is reconnected); the password is in the engine only."""
    import sqlalchemy as sa

    dialect = server.dialect
    engine = sa.create_engine(
        server.sqlalchemy_url(),
        pool_size=8,
        max_overflow=32,
        pool_pre_ping=True,
        pool_recycle=3600,
        isolation_level="READ COMMITTED",
        connect_args=dialect.connect_args(),  # the same session as lbswap's own connections
    )
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: dialect.session(dbapi_connection))
    if on_commit is not None:  # the journal's crash test hook
        sa.event.listen(engine, "commit", lambda _conn: on_commit())
    return _shared_backend()({"connection": server.shown()}, engine=engine)
