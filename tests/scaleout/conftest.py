"""The Redis servers (plain and TLS) and the MariaDB user scripts/test-scaleout.sh set up: their ports and
password files (never a password itself on a command line). Without them the scale-out tests skip, unless
CI=true, where they fail."""

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
    """A database of its own on the MariaDB server, for one test's journal."""

    host: str
    port: int
    user: str
    password_file: Path
    database: str

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self, database: str | None = "") -> Any:
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database if database == "" else database,
            autocommit=True,
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def tables(self) -> set[str]:
        return {r[0] for r in self.query("SHOW TABLES")}

    def write_free(self, pid: int) -> bool:
        """Process ``pid`` is inside no transaction on this journal (lbswap's, which lock lbswap_lock's row first,
        or taskflow's): as on SQLite, where a process stopped outside a write holds no lock of the journal. Only
        its own connections count (told by their client ports): the other processes go on working meanwhile."""
        ports = _client_ports(pid)
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT p.host FROM information_schema.innodb_trx t JOIN information_schema.processlist p "
                    "ON p.id = t.trx_mysql_thread_id WHERE p.db = %s AND p.id != CONNECTION_ID()",
                    (self.database,),
                )
                hosts = [str(row[0]) for row in cursor.fetchall()]
        finally:
            conn.close()
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


@pytest.fixture
def shared_journal() -> Iterator[SharedJournal]:
    env = os.environ
    needed = ("LBSWAP_TEST_DB_HOST", "LBSWAP_TEST_DB_USER", "LBSWAP_TEST_DB_PREFIX", "LBSWAP_TEST_DB_PASSWORD_FILE")
    if not all(env.get(name) for name in needed):
        if env.get("CI") == "true":
            pytest.fail("no MariaDB user: run scripts/test-scaleout.sh")
        pytest.skip("no MariaDB user: run scripts/test-scaleout.sh")
    database = f"{env['LBSWAP_TEST_DB_PREFIX']}_{secrets.token_hex(4)}"
    journal = SharedJournal(
        env["LBSWAP_TEST_DB_HOST"],
        int(env.get("LBSWAP_TEST_DB_PORT") or 3306),
        env["LBSWAP_TEST_DB_USER"],
        Path(env["LBSWAP_TEST_DB_PASSWORD_FILE"]),
        database,
    )
    admin = journal.connect(database=None)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}`")
        yield journal
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
