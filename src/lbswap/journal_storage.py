"""The journal's storage: its SQLite connections (pragmas, taskflow's pooled backend), room and permissions
checked before a run, and a storage failure (full disk, read-only, I/O error) told apart from corruption.
On a database server: taskflow's pooled backend there, and a lost server told as a storage failure (a stop at
the step boundary, as a full disk is; `lbswap resume` continues once the server is back)."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
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
        lean = False  # writes through _lean_connection()

        def get_connection(self) -> Any:
            if self._shared is None:
                if self.lean:
                    self._shared = _lean_connection()(self, upgrade_lock=self._upgrade_lock)
                    self._shared.validate(max_retries=self._max_retries)
                else:
                    self._shared = super().get_connection()
            return self._shared

        def close(self) -> None:
            self._shared = None
            super().close()
            self.engine.dispose()

    return Backend


@functools.cache
def _lean_connection() -> Any:
    """taskflow's SQLAlchemy ``Connection`` with its writes made lean (imported on first use); see
    :func:`taskflow_backend`."""
    import sqlalchemy as sa
    from oslo_utils import timeutils
    from taskflow import exceptions as tf_exceptions
    from taskflow.persistence import models
    from taskflow.persistence.backends import impl_sqlalchemy

    class LeanConnection(impl_sqlalchemy.Connection):  # type: ignore[misc]
        """Writes what the caller holds, one prepared statement per row, without reading the rows back first.

        taskflow's own ``Connection`` reads a row (or a flow detail with every atom detail of it) before each
        update, merges the caller's object into it, then rewrites every column of every atom detail of the
        flow, building each statement anew: most of lbswap's CPU per swap. The merge is a copy: the caller's
        object wins every field, so the rows written are the same. What is skipped: a flow detail's save
        writes its own row and inserts the atom details it has that the journal lacks, but does not rewrite
        the ones already there. taskflow's ``Storage`` saves every change of an atom detail through
        :meth:`update_atom_details` (a copy of it, written, then copied into the one it holds), so a stored atom
        detail already holds what the flow detail holds. Every save is still one transaction, committed
        before taskflow goes on, at the same points as before: crash safety and resume are unchanged.
        """

        def __init__(self, backend: Any, upgrade_lock: Any) -> None:
            super().__init__(backend, upgrade_lock)
            dialect = self._engine.dialect
            self._binds: dict[tuple[str, str], Any] = {}
            for table in self._tables:
                for column in table.columns:
                    bind = column.type.dialect_impl(dialect).bind_processor(dialect)
                    self._binds[(table.name, column.name)] = bind
            self._marker = "%s" if dialect.paramstyle in ("format", "pyformat") else "?"

        def _values(self, table: str, values: dict[str, Any]) -> tuple[list[str], list[Any]]:
            names, params = [], []
            for name, value in values.items():
                bind = self._binds[(table, name)]
                names.append(name)
                params.append(bind(value) if bind is not None and value is not None else value)
            return names, params

        def _update(self, conn: Any, table: str, values: dict[str, Any]) -> int:
            values = {**values, "updated_at": timeutils.utcnow()}
            key = values.pop("uuid")
            names, params = self._values(table, values)
            sets = ", ".join(f"{name} = {self._marker}" for name in names)
            sql = f"UPDATE {table} SET {sets} WHERE uuid = {self._marker}"  # noqa: S608 - names are the table's
            return int(conn.exec_driver_sql(sql, (*params, key)).rowcount)

        def _insert(self, conn: Any, table: str, values: dict[str, Any]) -> None:
            names, params = self._values(table, {"created_at": timeutils.utcnow(), **values})
            marks = ", ".join([self._marker] * len(names))
            conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", tuple(params))  # noqa: S608

        def _uuids(self, conn: Any, table: str, parent_uuid: str) -> set[str]:
            sql = f"SELECT uuid FROM {table} WHERE parent_uuid = {self._marker}"  # noqa: S608
            return {row[0] for row in conn.exec_driver_sql(sql, (parent_uuid,))}

        def _atom_row(self, ad: Any, parent_uuid: str) -> dict[str, Any]:
            return {**ad.to_dict(), "parent_uuid": parent_uuid, "atom_type": models.atom_detail_type(ad)}

        def _save_flow(self, conn: Any, fd: Any, parent_uuid: str | None) -> None:
            """The flow detail's row (inserted with ``parent_uuid``, else updated), and its atom details that the
            journal lacks."""
            if parent_uuid is not None:
                self._insert(conn, "flowdetails", {**fd.to_dict(), "parent_uuid": parent_uuid})
                stored: set[str] = set()
            else:
                if self._update(conn, "flowdetails", fd.to_dict()) != 1:
                    raise tf_exceptions.NotFound(f"No flow details found with uuid '{fd.uuid}'")
                stored = self._uuids(conn, "atomdetails", fd.uuid)
            for ad in fd:
                if ad.uuid not in stored:
                    self._insert(conn, "atomdetails", self._atom_row(ad, fd.uuid))

        @contextlib.contextmanager
        def _transaction(self, failed: str) -> Iterator[Any]:
            """One transaction on the engine; a database error raised as taskflow's StorageFailure(``failed``)."""
            try:
                with self._engine.begin() as conn:
                    yield conn
            except sa.exc.SQLAlchemyError:
                tf_exceptions.raise_with_cause(tf_exceptions.StorageFailure, failed)

        def update_atom_details(self, atom_detail: Any) -> Any:
            with self._transaction(f"Failed updating atom details with uuid '{atom_detail.uuid}'") as conn:
                if self._update(conn, "atomdetails", atom_detail.to_dict()) != 1:
                    raise tf_exceptions.NotFound(f"No atom details found with uuid '{atom_detail.uuid}'")
            return atom_detail

        def update_flow_details(self, flow_detail: Any) -> Any:
            with self._transaction(f"Failed updating flow details with uuid '{flow_detail.uuid}'") as conn:
                self._save_flow(conn, flow_detail, None)
            return flow_detail

        def save_logbook(self, book: Any) -> Any:
            with self._transaction(f"Failed saving logbook '{book.uuid}'") as conn:
                values = book.to_dict()
                del values["created_at"], values["updated_at"]
                if self._update(conn, "logbooks", values) == 1:
                    stored = self._uuids(conn, "flowdetails", book.uuid)
                else:
                    self._insert(conn, "logbooks", {**values, "created_at": book.created_at or timeutils.utcnow()})
                    stored = set()
                for fd in book:
                    self._save_flow(conn, fd, None if fd.uuid in stored else book.uuid)
            return book

    return LeanConnection


def taskflow_backend(path: Path, *, on_commit: Callable[[], None] | None = None) -> Any:
    """taskflow's SQLAlchemy backend on ``path``, with a pooled engine and one ``Connection`` for its life.

    taskflow by itself opens a new SQLite connection (NullPool) and builds a new ``Connection`` (new table
    objects, so every statement is compiled again) for each storage operation: that was most of lbswap's CPU
    per swap. The ``Connection`` holds no per-call state (each operation checks an engine connection out of
    the pool), so sharing it between the threads of parallel swaps is safe. Its writes are lean
    (:func:`_lean_connection`; not yet on a server's journal). ``on_commit`` runs after each commit.
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
    backend = _shared_backend()({"connection": f"sqlite:///{path}"}, engine=engine)
    backend.lean = True
    return backend


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
