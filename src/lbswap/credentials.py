"""Passwords of shared services (the jobboard's Redis, the journal's database server) kept out of sight.

A password comes from a file of mode 0600, else an environment variable, else the URL (discouraged: a command
line shows in the process list). Whatever prints an address masks the password; every log line that passes
the root logger's handlers has it masked (:func:`redact_logs`), and every error message is passed through
:func:`scrub`.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Mapping
from pathlib import Path

from lbswap.errors import ConfigError


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked (an error message or log line that may quote a URL)."""
    return text.replace(secret, "***") if secret else text


def masked_url(url: str) -> str:
    """A URL as typed, with anything between ``//`` and ``@`` masked (it is unparsed: mask generously)."""
    head, sep, rest = url.partition("//")
    if sep and "@" in rest:
        return f"{head}//***@{rest.rpartition('@')[2]}"
    return url


def read_password(path: Path, option: str) -> str:
    """The password in ``path`` (one line), which only its owner may read.

    :raises ConfigError: one line naming ``option``: not a file, others may read it, unreadable or empty.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{option} {path}: not a file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"{option} {path}: others may read it (mode {stat.S_IMODE(info.st_mode):o}): chmod 600 it"
            )
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot read it ({exc.strerror})") from None
    if not text:
        raise ConfigError(f"{option} {path}: it is empty")
    return text


class _Redact(logging.Filter):
    """Masks the password in every log record that passes a handler (a library may log a URL or a conf)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), ()
        if record.exc_info and record.exc_info[1] is not None and self.secret in str(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


def choose_password(
    url_password: str | None, env: Mapping[str, str], env_name: str, password_file: str | None, option: str
) -> tuple[str | None, str]:
    """A server's password and where it came from (``file``, ``env``, ``url`` or ``""``): the file given with
    ``option`` first, then the environment variable ``env_name``, then the URL.

    :raises ConfigError: the file is unreadable or others may read it.
    """
    if password_file:
        return read_password(Path(password_file), option), "file"
    if env.get(env_name):
        return env[env_name], "env"
    return url_password, "url" if url_password else ""


def redact_logs(secret: str | None) -> None:
    """Mask ``secret`` in whatever the root logger's handlers write (once per secret)."""
    if not secret:
        return
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Redact) and f.secret == secret for f in handler.filters):
            handler.addFilter(_Redact(secret))
