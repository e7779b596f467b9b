"""Where the jobboard is and how to reach it: a ``redis://`` or ``rediss://`` (TLS) address, a password kept out
of sight, taskflow's Redis jobboard opened on it.

The password comes from ``--jobboard-password-file`` (mode 0600), else ``LBSWAP_JOBBOARD_PASSWORD``, else
the URL (discouraged: a command line shows in the process list), as the journal's database password does
(:mod:`lbswap.credentials`). Whatever prints an address prints :meth:`Board.shown` (no password); every error
and log line of a conductor passes through :func:`scrub`.

Over ``rediss://`` the server's certificate is always verified, its name included: against the CAs in
``--jobboard-ca-file`` (PEM, as ``--os-cacert``), else the system's. There is no option to turn that off.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
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
CA_OPTION = "--jobboard-ca-file"
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
    tls: bool = False  # rediss://: TLS, the server's certificate and name checked
    ca_file: str | None = None  # the CAs (PEM) that certificate is checked against; None: the system's

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
            conf["ssl_cert_reqs"] = "required"  # and redis-py checks the host name against it
            if self.ca_file:
                conf["ssl_ca_certs"] = self.ca_file
        return conf

    def scrub(self, text: str) -> str:
        return scrub(text, self.password)


def parse(
    url: str,
    *,
    password_file: str | None = None,
    ca_file: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Board:
    """``redis[s]://[[USER]:PASSWORD@]HOST:PORT[/DB]`` (``rediss``: TLS), the password from the file, the env
    or the URL; ``ca_file``: the CAs a ``rediss://`` server's certificate is checked against.

    :raises ConfigError: not such a URL, a password file that others may read, a CA file without TLS or
        without a readable PEM certificate; the message masks the password.
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
    tls = parts.scheme == "rediss"
    if ca_file is not None and not tls:
        raise ConfigError(f"{CA_OPTION} goes with rediss://HOST:PORT (TLS), not with {masked_url(url)}")
    if ca_file is not None:
        ca_file = _ca_file(ca_file)
    password, source = choose_password(url_password, env, PASSWORD_ENV, password_file, "--jobboard-password-file")
    return Board(host, port, int(path or 0), username, password, source, tls=tls, ca_file=ca_file)


def _ca_file(path: str) -> str:
    """``path`` made absolute, once it is known to hold CA certificates (PEM) this process can read.

    :raises ConfigError: one line: missing, unreadable, a directory, or no certificate in it.
    """
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError:  # an OSError too: first
        raise ConfigError(f"{CA_OPTION} {path}: no PEM certificate in it") from None
    except OSError as exc:
        raise ConfigError(f"{CA_OPTION} {path}: cannot read it ({exc.strerror or exc})") from None
    return os.path.abspath(path)


def _why(exc: BaseException) -> str:
    """One line: the innermost cause of ``exc`` (taskflow's error adds redis' on a line of its own)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return " ".join(str(exc).split()) or type(exc).__name__


def _untrusted(board: Board, why: str) -> str:
    against = f"{CA_OPTION} {board.ca_file}" if board.ca_file else f"the system's CAs (give {CA_OPTION})"
    why = why.strip().rstrip(".")
    return f"jobboard {board.shown()}: its TLS certificate is not trusted ({why}), checked against {against}"


def _check_certificate(board: Board) -> None:
    """One TLS handshake with ``board``'s server, verified as the redis client verifies it: an untrusted
    certificate fails at once (the client would retry for seconds first, and word it in two lines). Any other
    trouble (refused, timed out) is left to the client.

    :raises ConfigError: one line: the certificate is not signed by a trusted CA, or not for ``board.host``.
    """
    context = ssl.create_default_context(cafile=board.ca_file)
    try:
        with (
            socket.create_connection((board.host, board.port), timeout=5.0) as raw,
            context.wrap_socket(raw, server_hostname=board.host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(_untrusted(board, exc.verify_message or str(exc))) from None
    except OSError:
        return


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
    if board.tls:
        _check_certificate(board)
    jobboard = impl_redis.RedisJobBoard(BOARD_NAME, board.conf())
    try:
        jobboard.connect()
    except Exception as exc:  # taskflow wraps redis' errors; the message may quote the address
        why = board.scrub(_why(exc))
        refused = re.search(r"certificate verify failed: ([^(]*)", why)
        if refused:
            raise ConfigError(_untrusted(board, refused.group(1))) from None
        raise ConfigError(f"jobboard {board.shown()}: cannot connect ({why})") from None
    try:
        yield jobboard
    finally:
        jobboard.close()
