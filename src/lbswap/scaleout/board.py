"""Where the jobboard is and how to reach it: a ``redis://`` address, a password kept out of sight, taskflow's
Redis jobboard opened on it.

The password comes from ``--jobboard-password-file`` (mode 0600), else ``LBSWAP_JOBBOARD_PASSWORD``, else
the URL (discouraged: a command line shows in the process list), as the journal's database password does
(:mod:`lbswap.credentials`). Whatever prints an address prints :meth:`Board.shown` (no password); every error
and log line of a conductor passes through :func:`scrub`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from lbswap import credentials
from lbswap.credentials import choose_password, masked_url, scrub
from lbswap.errors import ConfigError

LOG = logging.getLogger(__name__)
PASSWORD_ENV = "LBSWAP_JOBBOARD_PASSWORD"  # noqa: S105 - the name of the variable
NAMESPACE = "lbswap"  # the keys of lbswap's board on a shared Redis
BOARD_NAME = "lbswap-swaps"


@dataclass(frozen=True)
class Board:
    """A jobboard address; ``password`` never shows in its repr."""

    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = None
    password_from: str = ""  # "file", "env", "url" or ""
    tls: bool = False  # rediss://: TLS, the server's certificate checked against the system's CAs

    def __repr__(self) -> str:
        return f"Board({self.shown()})"

    def shown(self) -> str:
        """The address to print: the password masked."""
        who = f"{self.username or ''}:***@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{who}{self.host}:{self.port}/{self.db}"

    def conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "board": "redis",
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "namespace": NAMESPACE,
            "socket_timeout": 10.0,
            "socket_connect_timeout": 5.0,
        }
        if self.username:
            conf["username"] = self.username
        if self.password:
            conf["password"] = self.password
        if self.tls:
            conf["ssl"] = True
            conf["ssl_cert_reqs"] = "required"
        return conf

    def scrub(self, text: str) -> str:
        return scrub(text, self.password)


def parse(url: str, *, password_file: str | None = None, env: Mapping[str, str] | None = None) -> Board:
    """``redis[s]://[[USER]:PASSWORD@]HOST:PORT[/DB]`` (``rediss``: TLS), the password from the file, the env
    or the URL.

    :raises ConfigError: not such a URL, or a password file that others may read; the message masks the
        password.
    """
    env = os.environ if env is None else env
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
        url_password = unquote(parts.password) if parts.password else None
    except ValueError:
        raise ConfigError(f"--jobboard {masked_url(url)}: not redis[s]://HOST:PORT[/DB]") from None
    if parts.scheme not in ("redis", "rediss") or not host or port is None or parts.query or parts.fragment:
        raise ConfigError(f"--jobboard {masked_url(url)}: not redis[s]://HOST:PORT[/DB]")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ConfigError(f"--jobboard {masked_url(url)}: the database is a number (redis://HOST:PORT/0)")
    username = unquote(parts.username) if parts.username else None
    password, source = choose_password(url_password, env, PASSWORD_ENV, password_file, "--jobboard-password-file")
    return Board(host, port, int(path or 0), username, password, source, tls=parts.scheme == "rediss")


def redact_logs(board: Board) -> None:
    """Mask ``board``'s password in whatever the root logger's handlers write."""
    credentials.redact_logs(board.password)


@contextmanager
def connected(board: Board) -> Iterator[Any]:
    """taskflow's Redis jobboard on ``board``, connected; closed on leaving.

    :raises ConfigError: the board cannot be reached or refuses the password (the password is not shown).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from taskflow.jobs.backends import impl_redis
        except ImportError as exc:
            raise ConfigError(
                f"the jobboard needs the python redis client ({exc}): pip install 'lbswap[scaleout]'"
            ) from None
    jobboard = impl_redis.RedisJobBoard(BOARD_NAME, board.conf())
    try:
        jobboard.connect()
    except Exception as exc:  # taskflow wraps redis' errors; the message may quote the address
        raise ConfigError(f"jobboard {board.shown()}: cannot connect ({board.scrub(str(exc))})") from None
    try:
        yield jobboard
    finally:
        jobboard.close()
