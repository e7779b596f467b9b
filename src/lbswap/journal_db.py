"""Where the journal lives and how lbswap's own tables are read and written there.

A journal is a SQLite file (the default: one host) or a database on a server, which conductors on several hosts
share: MariaDB/MySQL (``mysql+pymysql://USER@HOST[:PORT]/DB``) or PostgreSQL
(``postgresql+psycopg://USER@HOST[:PORT]/DB``). All are reached through :class:`Database`: DB-API-like
``execute`` with ``?`` placeholders and SQLite's words (``INSERT OR IGNORE``, ``INSERT OR REPLACE``, names
quoted with backquotes), and one :meth:`Database.write` transaction context that serializes writers: on SQLite
``BEGIN IMMEDIATE`` (the database's write lock), on a server ``START TRANSACTION`` then ``SELECT ... FOR UPDATE``
of the single row of ``lbswap_lock``, so a decision read and written in one transaction (a swap's lease, the
fleet's gates) is as atomic across hosts as it is in one SQLite file.

What differs between the servers lives here only, in one :class:`Dialect` per URL scheme: the python client, the
session (READ COMMITTED; a row lock waited for at most ``LOCK_WAIT_SECONDS``; a transaction left open by a stopped
process ended by the server after ``IDLE_TRANSACTION_SECONDS``, its locks freed), the words of upserts and of
tables, the lock held while the tables are set up, and what a lost connection looks like.

A server's password never comes from the command line's URL by choice: ``--journal-password-file`` (mode 0600)
or ``LBSWAP_JOURNAL_PASSWORD`` (a password in the URL is accepted with a warning). It is kept in
:class:`Server` only, never shown (``str(server)`` masks it), never written into the journal; server errors
are raised with it masked. A server's error is raised as :class:`ServerError`, a ``sqlite3.OperationalError``,
so the journal's handling of a failed write (stop at the step boundary; resume later) applies unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from lbswap.credentials import choose_password, masked_url, scrub
from lbswap.errors import ConfigError, StorageError

PASSWORD_ENV = "LBSWAP_JOURNAL_PASSWORD"  # noqa: S105 - the name of the variable
#: a transaction left open this long by a stopped process is ended by the server, its locks freed
IDLE_TRANSACTION_SECONDS = 30
LOCK_WAIT_SECONDS = 60


class ServerError(sqlite3.OperationalError):
    """A database server's error (lost connection, refused login, lock wait timeout), its password masked."""


class Dialect:
    """What one kind of database server does its own way (the instances are in :data:`DIALECTS`)."""

    scheme: ClassVar[str]
    product: ClassVar[str]
    port: ClassVar[int]
    client: ClassVar[str]  # the python client's module
    setup_lock_seconds: ClassVar[int]
    take_setup_lock: ClassVar[str]  # returns 1 once granted
    free_setup_lock: ClassVar[str]
    tables_sql: ClassVar[str]
    columns_sql: ClassVar[str]  # one ``?``: the table
    #: words of the client's errors for a server lost, unreachable or a lock waited for too long (under
    #: taskflow's and sqlalchemy's errors): a reason to stop at the step boundary, as a full disk is
    storage_words: ClassVar[tuple[str, ...]]

    def module(self) -> Any:
        """The python client (imported on first use).

        :raises ConfigError: it is not installed.
        """
        try:
            return __import__(self.client)
        except ImportError as exc:
            raise ConfigError(
                f"a journal on {self.product} needs the python client {self.client} ({exc}): "
                "pip install 'lbswap[scaleout]'"
            ) from None

    def error(self) -> type[Exception]:
        """The base class of the client's errors."""
        raise NotImplementedError

    def connect_args(self) -> dict[str, Any]:
        """The client's connection arguments, for lbswap's connections and taskflow's engine alike."""
        raise NotImplementedError

    def url_query(self) -> dict[str, str]:
        return {}

    def session(self, dbapi_connection: Any) -> None:
        """Set a new connection up (lbswap's and taskflow's): what :meth:`connect_args` cannot."""

    def connect(self, server: Server) -> Any:
        """A new connection in autocommit (a write transaction is begun explicitly), its session set up."""
        raise NotImplementedError

    def gone(self, connection: Any, exc: Exception) -> bool:
        """After ``exc``, ``connection`` is unusable (the server went away): open another."""
        raise NotImplementedError

    def translate(self, sql: str, columns: Any) -> str:
        """``sql`` (SQLite's words, backquoted names, ``?``) in this server's words; ``columns(table)`` gives a
        table's columns."""
        raise NotImplementedError

    def create_table(self, statement: str) -> list[str]:
        """The statements that create a table given as MariaDB's ``CREATE TABLE IF NOT EXISTS`` (with an inline
        ``INDEX``), on this server."""
        raise NotImplementedError


def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class MySQL(Dialect):
    scheme = "mysql+pymysql"
    product = "MariaDB/MySQL"
    port = 3306
    client = "pymysql"
    setup_lock_seconds = 120
    take_setup_lock = f"SELECT GET_LOCK('lbswap_journal_setup', {setup_lock_seconds})"
    free_setup_lock = "SELECT RELEASE_LOCK('lbswap_journal_setup')"
    tables_sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    columns_sql = (
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?"
    )
    storage_words = ("lost connection to", "server has gone away", "can't connect to", "lock wait timeout")
    _WORDS = (("INSERT OR REPLACE INTO", "REPLACE INTO"), ("INSERT OR IGNORE INTO", "INSERT IGNORE INTO"))
    _GONE = (2006, 2013, 2003, 2055)  # server gone away, lost connection, cannot connect, lost (ssl)
    # keys compared byte for byte
    _TABLE_OPTIONS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    def error(self) -> type[Exception]:
        return self.module().MySQLError  # type: ignore[no-any-return]

    def connect_args(self) -> dict[str, Any]:
        return {"connect_timeout": 10, "read_timeout": LOCK_WAIT_SECONDS + 30}

    def url_query(self) -> dict[str, str]:
        return {"charset": "utf8mb4"}

    def session(self, dbapi_connection: Any) -> None:
        pymysql = self.module()
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")
            # MariaDB: a stopped process's open transaction does not hold the writers' lock for ever (MySQL has
            # no such variable)
            with contextlib.suppress(pymysql.MySQLError):
                cursor.execute(f"SET SESSION idle_transaction_timeout = {IDLE_TRANSACTION_SECONDS}")

    def connect(self, server: Server) -> Any:
        pymysql = self.module()
        conn = pymysql.connect(
            host=server.host,
            port=server.port,
            user=server.username,
            password=server.password or "",
            database=server.database,
            charset="utf8mb4",
            autocommit=True,
            write_timeout=60,
            client_flag=pymysql.constants.CLIENT.FOUND_ROWS,  # rowcount: rows matched, as SQLite's
            **self.connect_args(),
        )
        self.session(conn)
        return conn

    def gone(self, connection: Any, exc: Exception) -> bool:
        pymysql = self.module()
        return isinstance(exc, pymysql.err.InterfaceError) or bool(exc.args and exc.args[0] in self._GONE)

    def translate(self, sql: str, columns: Any) -> str:
        for old, new in self._WORDS:
            sql = sql.replace(old, new)
        return _placeholders(sql)

    def create_table(self, statement: str) -> list[str]:
        return [statement + self._TABLE_OPTIONS]


class PostgreSQL(Dialect):
    scheme = "postgresql+psycopg"
    product = "PostgreSQL"
    port = 5432
    client = "psycopg"
    setup_lock_seconds = LOCK_WAIT_SECONDS  # the session's lock_timeout
    # one lock per database; a session's: freed if the connection is lost
    take_setup_lock = "SELECT 1 FROM (SELECT pg_advisory_lock(hashtext('lbswap_journal_setup'))) AS taken"
    free_setup_lock = "SELECT pg_advisory_unlock(hashtext('lbswap_journal_setup'))"
    tables_sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    columns_sql = (
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?"
    )
    storage_words = (
        "server closed the connection",
        "terminating connection",
        "the connection is closed",
        "the connection is lost",
        "connection failed",
        "due to lock timeout",
    )
    _REPLACE = re.compile(r"INSERT OR REPLACE INTO (\w+) \(([^)]*)\)")
    _INDEX = re.compile(r", INDEX (\w+) \(([^)]*)\)\)$")

    def error(self) -> type[Exception]:
        return self.module().Error  # type: ignore[no-any-return]

    def connect_args(self) -> dict[str, Any]:
        # the session's settings travel in the startup packet: no statement (so no transaction) sets them
        options = (
            f"-c lock_timeout={LOCK_WAIT_SECONDS}s -c idle_in_transaction_session_timeout={IDLE_TRANSACTION_SECONDS}s"
            r" -c default_transaction_isolation=read\ committed"
        )
        # a server that stops answering is noticed within about a minute or two, as pymysql's read_timeout does:
        # keepalives on an idle connection, and tcp_user_timeout (ms) while a statement's bytes wait for the
        # server's acknowledgement (keepalives do not run then; the kernel alone would retry for about 15 min)
        keepalive = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
        user_timeout = {"tcp_user_timeout": (LOCK_WAIT_SECONDS + 30) * 1000}
        return {"connect_timeout": 10, "options": options, **keepalive, **user_timeout}

    def connect(self, server: Server) -> Any:
        psycopg = self.module()
        return psycopg.connect(
            host=server.host,
            port=server.port,
            user=server.username,
            password=server.password or "",
            dbname=server.database,
            autocommit=True,
            **self.connect_args(),
        )

    def gone(self, connection: Any, exc: Exception) -> bool:
        return bool(connection.closed)

    def translate(self, sql: str, columns: Any) -> str:
        sql = sql.replace("`", '"')
        if sql.startswith("INSERT OR IGNORE INTO"):
            sql = "INSERT INTO" + sql[len("INSERT OR IGNORE INTO") :] + " ON CONFLICT DO NOTHING"
        elif replace := self._REPLACE.match(sql):
            # REPLACE's row: the columns given, the others at their defaults
            table, given = replace[1], [c.strip() for c in replace[2].split(",")]
            assigned = [f"{c} = EXCLUDED.{c}" for c in given]
            assigned += [f"{c} = DEFAULT" for c in sorted(columns(table) - set(given))]
            sql = (
                "INSERT INTO"
                + sql[len("INSERT OR REPLACE INTO") :]
                + f" ON CONFLICT ON CONSTRAINT {table}_pkey DO UPDATE SET {', '.join(assigned)}"
            )
        return _placeholders(sql)

    def create_table(self, statement: str) -> list[str]:
        statement = statement.replace(" DOUBLE ", " DOUBLE PRECISION ").replace(" LONGTEXT ", " TEXT ")
        index = self._INDEX.search(statement)
        if index is None:
            return [statement]
        table = statement.split()[5]  # CREATE TABLE IF NOT EXISTS name (...
        return [statement[: index.start()] + ")", f"CREATE INDEX IF NOT EXISTS {index[1]} ON {table} ({index[2]})"]


DIALECTS: dict[str, Dialect] = {d.scheme: d for d in (MySQL(), PostgreSQL())}
SCHEMES = tuple(DIALECTS)
#: the words of every server's storage failures (:func:`lbswap.journal_storage.storage_cause`)
STORAGE_WORDS = tuple(word for d in DIALECTS.values() for word in d.storage_words)
_FORMS = " or ".join(f"{scheme}://USER@HOST[:PORT]/DB" for scheme in SCHEMES)


def _one_line(text: str) -> str:
    return " ".join(text.split())  # psycopg's messages have several lines


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

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.scheme]

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
            query=self.dialect.url_query(),
        )

    def connect(self) -> Any:
        """A new connection (autocommit, READ COMMITTED: every statement sees the last commits).

        :raises ServerError: cannot connect or log in (the password masked).
        :raises ConfigError: the python client is not installed.
        """
        dialect = self.dialect
        error = dialect.error()
        try:
            return dialect.connect(self)
        except error as exc:
            raise ServerError(f"cannot connect ({_one_line(self.scrub(str(exc)))})") from None


Location = Path | Server


def location(
    spec: str | os.PathLike[str], *, password_file: str | None = None, env: Mapping[str, str] | None = None
) -> Location:
    """A ``--journal`` value: a path (SQLite), ``mysql+pymysql://USER[:PASSWORD]@HOST[:PORT]/DB`` or
    ``postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DB``.

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
        raise ConfigError(f"--journal {masked_url(text)}: not {_FORMS}") from None
    database = parts.path.strip("/")
    if parts.scheme not in SCHEMES or not host or not parts.username or not database or parts.fragment:
        raise ConfigError(f"--journal {masked_url(text)}: not {_FORMS} (MariaDB/MySQL, PostgreSQL) nor a path")
    if parts.query or "/" in database:
        raise ConfigError(f"--journal {masked_url(text)}: give only USER@HOST[:PORT]/DB, without options")
    password, source = choose_password(url_password, env, PASSWORD_ENV, password_file, "--journal-password-file")
    port = port or DIALECTS[parts.scheme].port
    return Server(parts.scheme, host, port, database, unquote(parts.username), password, source)


def is_server(where: Location) -> bool:
    return isinstance(where, Server)


# --- one connection -------------------------------------------------------------------------------------------


class Database:
    """One connection to a journal, used under the caller's lock (one thread at a time)."""

    def __init__(self, where: Location, *, timeout: float = 60) -> None:
        self.where = where
        self.server = isinstance(where, Server)
        self._broken = False
        self._sql: dict[str, str] = {}  # SQLite's words -> the server's
        self._columns: dict[str, set[str]] = {}
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
        where = self.where
        if not isinstance(where, Server):
            return self._conn.execute(sql, params)
        dialect = where.dialect
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = dialect.translate(sql, self._table_columns)
        try:
            if self._broken:  # the server went away: a new connection, set up as the first (between transactions)
                self.close()
                self._conn = where.connect()
                self._broken = False
            cursor = self._conn.cursor()
            cursor.execute(translated, tuple(params))
        except dialect.error() as exc:
            if dialect.gone(self._conn, exc):
                self._broken = True
            raise ServerError(_one_line(where.scrub(str(exc)))) from None
        return cursor

    def _table_columns(self, table: str) -> set[str]:
        if table not in self._columns:
            self._columns[table] = self.columns(table)
        return self._columns[table]

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
        if isinstance(self.where, Server):
            rows = self.execute(self.where.dialect.tables_sql)
        else:
            rows = self.execute("SELECT name FROM sqlite_master WHERE type='table'")
        return {str(r[0]) for r in rows}

    def columns(self, table: str) -> set[str]:
        if isinstance(self.where, Server):
            return {str(r[0]) for r in self.execute(self.where.dialect.columns_sql, (table,))}
        return {str(r[1]) for r in self.execute(f"PRAGMA table_info({table})")}

    def create_table(self, statement: str) -> None:
        """A server's table from MariaDB's ``CREATE TABLE IF NOT EXISTS`` (inline ``INDEX``), in its dialect."""
        assert isinstance(self.where, Server)
        for sql in self.where.dialect.create_table(statement):
            self.execute(sql)

    @contextmanager
    def setup_lock(self) -> Iterator[None]:
        """A server's named lock: one process at a time sets up the tables (SQLite uses a lock file)."""
        assert isinstance(self.where, Server)
        dialect = self.where.dialect
        row = self.execute(dialect.take_setup_lock).fetchone()
        if not row or row[0] != 1:
            raise ServerError(f"the journal's setup lock was not granted in {dialect.setup_lock_seconds} s")
        try:
            yield
        finally:
            self.execute(dialect.free_setup_lock)

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
