"""Where the journal lives and how lbswap's own tables are read and written there.

A journal is a SQLite file (the default: one host) or a database on a MariaDB/MySQL server
(``mysql+pymysql://USER@HOST[:PORT]/DB``), which conductors on several hosts share. Both are reached through
:class:`Database`: DB-API-like ``execute`` with ``?`` placeholders and one :meth:`Database.write` transaction
context that serializes writers: on SQLite ``BEGIN IMMEDIATE`` (the database's write lock), on a server
``START TRANSACTION`` then ``SELECT ... FOR UPDATE`` of the single row of ``lbswap_lock``, so a decision read
and written in one transaction (a swap's lease, the fleet's gates) is as atomic across hosts as it is in one
SQLite file.

A server's password never comes from the command line's URL by choice: ``--journal-password-file`` (mode 0600)
or ``LBSWAP_JOURNAL_PASSWORD`` (a password in the URL is accepted with a warning). It is kept in
:class:`Server` only, never shown (``str(server)`` masks it), never written into the journal; server errors
are raised with it masked. A server's error is raised as :class:`ServerError`, a ``sqlite3.OperationalError``,
so the journal's handling of a failed write (stop at the step boundary; resume later) applies unchanged.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from lbswap.credentials import choose_password, masked_url, scrub
from lbswap.errors import ConfigError, StorageError

PASSWORD_ENV = "LBSWAP_JOURNAL_PASSWORD"  # noqa: S105 - the name of the variable
SCHEMES = ("mysql+pymysql",)
#: a transaction left open this long by a stopped process is ended by the server (MariaDB), its locks freed
IDLE_TRANSACTION_SECONDS = 30
LOCK_WAIT_SECONDS = 60


class ServerError(sqlite3.OperationalError):
    """A database server's error (lost connection, refused login, lock wait timeout), its password masked."""


@dataclass(frozen=True)
class Server:
    """A journal on a database server; ``password`` never shows (``str`` and ``repr`` mask it)."""

    scheme: str
    host: str
    port: int
    database: str
    username: str
    password: str | None = field(default=None, repr=False)
    password_from: str = ""  # "file", "env", "url" or ""

    def __str__(self) -> str:
        return self.shown()

    def shown(self) -> str:
        who = quote(self.username, safe="") + (":***" if self.password else "")
        return f"{self.scheme}://{who}@{self.host}:{self.port}/{self.database}"

    def scrub(self, text: str) -> str:
        return scrub(text, self.password)

    def sqlalchemy_url(self) -> Any:
        import sqlalchemy as sa

        return sa.engine.URL.create(
            self.scheme,
            username=self.username,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query={"charset": "utf8mb4"},
        )

    def connect(self) -> Any:
        """A new pymysql connection (autocommit, READ COMMITTED: every statement sees the last commits).

        :raises ServerError: cannot connect or log in (the password masked).
        """
        try:
            import pymysql
        except ImportError as exc:
            raise ConfigError(
                f"journal {self}: needs the python MySQL client ({exc}): pip install 'lbswap[scaleout]'"
            ) from None
        try:
            conn = pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.username,
                password=self.password or "",
                database=self.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=10,
                read_timeout=LOCK_WAIT_SECONDS + 30,
                write_timeout=60,
                client_flag=pymysql.constants.CLIENT.FOUND_ROWS,  # rowcount: rows matched, as SQLite's
            )
        except pymysql.MySQLError as exc:
            raise ServerError(f"cannot connect ({self.scrub(str(exc))})") from None
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")
            # MariaDB: a stopped process's open transaction does not hold the writers' lock for ever (MySQL has
            # no such variable)
            with contextlib.suppress(pymysql.MySQLError):
                cursor.execute(f"SET SESSION idle_transaction_timeout = {IDLE_TRANSACTION_SECONDS}")
        return conn


Location = Path | Server


def location(
    spec: str | os.PathLike[str], *, password_file: str | None = None, env: Mapping[str, str] | None = None
) -> Location:
    """A ``--journal`` value: a path (SQLite), or ``mysql+pymysql://USER[:PASSWORD]@HOST[:PORT]/DB``.

    :raises ConfigError: a URL that is not such a server's, or a password file that others may read; the
        message masks the password.
    """
    text = os.fspath(spec)
    if "://" not in text:
        return Path(text)
    env = os.environ if env is None else env
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
        url_password = unquote(parts.password) if parts.password else None
    except ValueError:
        raise ConfigError(f"--journal {masked_url(text)}: not mysql+pymysql://USER@HOST[:PORT]/DB") from None
    database = parts.path.strip("/")
    if parts.scheme not in SCHEMES or not host or not parts.username or not database or parts.fragment:
        raise ConfigError(
            f"--journal {masked_url(text)}: not mysql+pymysql://USER@HOST[:PORT]/DB (MariaDB or MySQL) nor a path"
        )
    if parts.query or "/" in database:
        raise ConfigError(f"--journal {masked_url(text)}: give only USER@HOST[:PORT]/DB, without options")
    password, source = choose_password(url_password, env, PASSWORD_ENV, password_file, "--journal-password-file")
    return Server(parts.scheme, host, port or 3306, database, unquote(parts.username), password, source)


def is_server(where: Location) -> bool:
    return isinstance(where, Server)


# --- one connection -------------------------------------------------------------------------------------------

_MYSQL_WORDS = (("INSERT OR REPLACE INTO", "REPLACE INTO"), ("INSERT OR IGNORE INTO", "INSERT IGNORE INTO"))
_GONE = (2006, 2013, 2003, 2055)  # server gone away, lost connection, cannot connect, lost (ssl)


class Database:
    """One connection to a journal, used under the caller's lock (one thread at a time)."""

    def __init__(self, where: Location, *, timeout: float = 60) -> None:
        self.where = where
        self.server = isinstance(where, Server)
        self._broken = False
        if isinstance(where, Server):
            self._conn: Any = where.connect()
        else:
            self._conn = sqlite3.connect(where, timeout=timeout, check_same_thread=False, isolation_level=None)

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The SQLite connection itself (pragmas, executescript)."""
        assert isinstance(self._conn, sqlite3.Connection)
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement with ``?`` placeholders; returns a cursor (``fetchone``, ``fetchall``,
        ``rowcount``, iteration)."""
        if not isinstance(self.where, Server):
            return self._conn.execute(sql, params)
        import pymysql

        for old, new in _MYSQL_WORDS:
            sql = sql.replace(old, new)
        sql = sql.replace("%", "%%").replace("?", "%s")
        try:
            if self._broken:  # the server went away: a new connection, set up as the first (between transactions)
                self.close()
                self._conn = self.where.connect()
                self._broken = False
            cursor = self._conn.cursor()
            cursor.execute(sql, tuple(params))
        except pymysql.MySQLError as exc:
            if isinstance(exc, pymysql.err.InterfaceError) or (exc.args and exc.args[0] in _GONE):
                self._broken = True
            raise ServerError(self.where.scrub(str(exc))) from None
        return cursor

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write transaction, writers serialized (see the module's text); rolled back on any exception."""
        if self.server:
            self.execute("START TRANSACTION")
            try:
                if self.execute("SELECT n FROM lbswap_lock WHERE id = 1 FOR UPDATE").fetchone() is None:
                    # no row, no lock (READ COMMITTED locks only what it finds): writers would not be serialized
                    raise ServerError(f"the journal at {self.where} has no lock row: is this an lbswap journal?")
            except BaseException:
                self._rollback()
                raise
        else:
            self.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        self.execute("COMMIT")

    def _rollback(self) -> None:
        try:
            self.execute("ROLLBACK")
        except sqlite3.OperationalError:
            if not self.server:
                raise

    def tables(self) -> set[str]:
        if self.server:
            rows = self.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        else:
            rows = self.execute("SELECT name FROM sqlite_master WHERE type='table'")
        return {str(r[0]) for r in rows}

    def columns(self, table: str) -> set[str]:
        if self.server:
            rows = self.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
                (table,),
            )
            return {str(r[0]) for r in rows}
        return {str(r[1]) for r in self.execute(f"PRAGMA table_info({table})")}

    @contextmanager
    def setup_lock(self) -> Iterator[None]:
        """A server's named lock: one process at a time sets up the tables (SQLite uses a lock file)."""
        row = self.execute("SELECT GET_LOCK('lbswap_journal_setup', 120)").fetchone()
        if not row or row[0] != 1:
            raise ServerError("the journal's setup lock was not granted in 120 s")
        try:
            yield
        finally:
            self.execute("SELECT RELEASE_LOCK('lbswap_journal_setup')")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a connection that already broke
            self._conn.close()


_local = threading.local()


def shared(where: Location) -> Database:
    """This thread's connection to ``where`` (kept open: conductors read the journal every poll); opened when
    missing or broken. SQLite connections are not kept (a file may be replaced under it)."""
    if not isinstance(where, Server):
        return Database(where)
    cache: dict[Server, Database] = _local.__dict__.setdefault("databases", {})
    db = cache.get(where)
    if db is None:
        db = cache[where] = Database(where)
    return db


def release(db: Database) -> None:
    """Done with a connection from :func:`shared` (a SQLite one is closed)."""
    if not db.server:
        db.close()


def storage_error(where: Server, exc: BaseException) -> StorageError:
    return StorageError(
        f"journal {where}: the database server failed ({where.scrub(str(exc))}): check it is up and the user "
        "may use the database, then retry"
    )
