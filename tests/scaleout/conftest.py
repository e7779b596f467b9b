"""The Redis servers (plain and TLS), the MariaDB user and the PostgreSQL cluster scripts/test-scaleout.sh sets
up: their ports and password files (never a password itself on a command line). Without them the scale-out tests
skip, unless CI=true, where they fail."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_dbs = itertools.count(1)  # one Redis database per test: a test never sees another's jobs


@dataclass(frozen=True)
class RedisBoard:
    port: int
    password_file: Path
    db: int

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"


@pytest.fixture
def redis_board() -> Iterator[RedisBoard]:
    port, password_file = os.environ.get("LBSWAP_TEST_REDIS_PORT"), os.environ.get("LBSWAP_TEST_REDIS_PASSWORD_FILE")
    if not port or not password_file:
        if os.environ.get("CI") == "true":
            pytest.fail("no Redis server: run scripts/test-scaleout.sh")
        pytest.skip("no Redis server: run scripts/test-scaleout.sh")
    yield RedisBoard(int(port), Path(password_file), next(_dbs))


@dataclass(frozen=True)
class TlsBoard(RedisBoard):
    """The TLS-only Redis (scripts/with-tls-redis.sh): its certificate signed by ``ca_file`` for 127.0.0.1;
    ``other_ca_file`` signed nothing."""

    ca_file: Path
    other_ca_file: Path

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/{self.db}"


@pytest.fixture
def tls_board() -> Iterator[TlsBoard]:
    env = os.environ
    needed = ("PORT", "PASSWORD_FILE", "CA_FILE", "OTHER_CA_FILE")
    if not all(env.get(f"LBSWAP_TEST_REDISS_{name}") for name in needed):
        if env.get("CI") == "true":
            pytest.fail("no TLS Redis server: run scripts/test-scaleout.sh")
        pytest.skip("no TLS Redis server: run scripts/test-scaleout.sh")
    yield TlsBoard(
        int(env["LBSWAP_TEST_REDISS_PORT"]),
        Path(env["LBSWAP_TEST_REDISS_PASSWORD_FILE"]),
        next(_dbs),
        Path(env["LBSWAP_TEST_REDISS_CA_FILE"]),
        Path(env["LBSWAP_TEST_REDISS_OTHER_CA_FILE"]),
    )


@dataclass(frozen=True)
class SharedJournal:
    """A database of its own on the MariaDB server or the PostgreSQL cluster, for one test's journal."""

    kind: str  # "mariadb" or "postgresql"
    host: str
    port: int
    user: str
    password_file: Path
    database: str

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def scheme(self) -> str:
        return "mysql+pymysql" if self.kind == "mariadb" else "postgresql+psycopg"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def refused_login(self) -> str:
        """What the server says to a wrong password."""
        return "Access denied" if self.kind == "mariadb" else "password authentication failed"

    def connect(self, database: str | None = "") -> Any:
        """A connection of the test's own (autocommit), to this journal's database or another."""
        database = self.database if database == "" else database
        if self.kind == "mariadb":
            import pymysql

            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=database,
                autocommit=True,
            )
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or "postgres",
            autocommit=True,
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``%s`` placeholders: both clients take them)."""
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    def tables(self) -> set[str]:
        if self.kind == "mariadb":
            return {r[0] for r in self.query("SHOW TABLES")}
        return {r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def dump(self, table: str) -> list[tuple[Any, ...]]:
        quote = "`" if self.kind == "mariadb" else '"'
        return self.query(f"SELECT * FROM {quote}{table}{quote}")

    def connection_id(self, journal: Any) -> int:
        """The server's id of the journal's own connection (lbswap.journal.Journal)."""
        sql = "SELECT CONNECTION_ID()" if self.kind == "mariadb" else "SELECT pg_backend_pid()"
        return int(journal._db.execute(sql).fetchone()[0])

    def kill(self, connection_id: int) -> None:
        """End a connection as a restarted server would."""
        if self.kind == "mariadb":
            self.query(f"KILL CONNECTION {int(connection_id)}")
        else:
            self.query("SELECT pg_terminate_backend(%s)", (connection_id,))

    def write_free(self, pid: int) -> bool:
        """Process ``pid`` is inside no transaction on this journal (lbswap's, which lock lbswap_lock's row first,
        or taskflow's): as on SQLite, where a process stopped outside a write holds no lock of the journal. Only
        its own connections count (told by their client ports): the other processes go on working meanwhile."""
        if self.kind == "mariadb":
            sql = (
                "SELECT p.host FROM information_schema.innodb_trx t JOIN information_schema.processlist p "
                "ON p.id = t.trx_mysql_thread_id WHERE p.db = %s AND p.id != CONNECTION_ID()"
            )
        else:
            sql = (
                "SELECT client_port FROM pg_stat_activity WHERE datname = %s AND pid != pg_backend_pid() "
                "AND xact_start IS NOT NULL"
            )
        ports = _client_ports(pid)
        hosts = [str(row[0]) for row in self.query(sql, (self.database,))]
        return not any(host.rpartition(":")[2] in ports for host in hosts)


def _client_ports(pid: int) -> set[str]:
    """The local TCP ports of process ``pid``'s sockets (its connections to the database server)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(str(int(fields[1].rpartition(":")[2], 16)))
    return ports


#: what each server needs from scripts/test-scaleout.sh (the MariaDB user's, the PostgreSQL cluster's)
_SERVERS = {
    "mariadb": ("LBSWAP_TEST_DB_HOST", "LBSWAP_TEST_DB_PORT", "LBSWAP_TEST_DB_USER", "LBSWAP_TEST_DB_PASSWORD_FILE"),
    "postgresql": ("LBSWAP_TEST_PG_HOST", "LBSWAP_TEST_PG_PORT", "LBSWAP_TEST_PG_USER", "LBSWAP_TEST_PG_PASSWORD_FILE"),
}


@pytest.fixture(params=["mariadb", "postgresql"])
def shared_journal(request: pytest.FixtureRequest) -> Iterator[SharedJournal]:
    """A journal's database on each server (a test that runs on one only parametrizes it indirectly)."""
    kind: str = request.param
    env = os.environ
    needed = (*_SERVERS[kind], "LBSWAP_TEST_DB_PREFIX")
    if not all(env.get(name) for name in needed):
        missing = ", ".join(name for name in needed if not env.get(name))
        if env.get("CI") == "true":
            pytest.fail(f"no {kind} journal ({missing}): run scripts/test-scaleout.sh")
        pytest.skip(f"no {kind} journal ({missing}): run scripts/test-scaleout.sh")
    host, port, user, password_file = (env[name] for name in _SERVERS[kind])
    database = f"{env['LBSWAP_TEST_DB_PREFIX']}_{secrets.token_hex(4)}"
    journal = SharedJournal(kind, host, int(port), user, Path(password_file), database)
    admin = journal.connect(database=None)
    quote = "`" if kind == "mariadb" else '"'
    try:
        admin.cursor().execute(f"CREATE DATABASE {quote}{database}{quote}")
        yield journal
    finally:
        if kind == "postgresql":  # a connection left by the test (a stopped process's) would keep it
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {quote}{database}{quote} WITH (FORCE)")
        else:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {quote}{database}{quote}")
        admin.close()
