"""Command line: cliff commands (campaign, inventory, lab, fake) over a core that never prints.

This module holds what every command shares: where the cloud and the journal are, how a document is written
(one JSON or YAML document on stdout, also on errors), and how an error becomes one line on stderr with its
exit code: 0 all done, 1 some load balancer failed or was rolled back, 2 bad input (nothing changed),
130/143 interrupted. The commands live in app.py (``lbswap``) and osc_plugin.py (``openstack``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from lbswap.errors import ConfigError, LbswapError, StopSwap
from lbswap.textsafe import rich_text, shown

log = logging.getLogger("lbswap")

FORMATS = ("table", "json", "yaml", "value", "csv")  # every -f a command may take (cliff's list formatters)
DOCUMENT_FORMATS = ("json", "yaml")  # the formats that give one document on stdout, also on errors


# --- configuration -----------------------------------------------------------------------------------------


def backend_spec(args: argparse.Namespace) -> str:
    """--backend > --os-cloud > OS_CLOUD > LBSWAP_BACKEND > local."""
    if args.backend and args.os_cloud:
        raise ConfigError("give either --backend or --os-cloud, not both")
    if args.backend:
        return str(args.backend)
    if args.os_cloud:
        return f"openstack:{args.os_cloud}"
    if os.environ.get("OS_CLOUD"):
        return f"openstack:{os.environ['OS_CLOUD']}"
    return os.environ.get("LBSWAP_BACKEND", "local")


def state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lbswap"


def journal_path(args: argparse.Namespace) -> Path:
    return Path(args.journal) if args.journal else state_home() / "journal.sqlite"


# --- rendering ---------------------------------------------------------------------------------------------


@dataclass
class Output:
    """What a command hands to its renderer: the nested ``document`` for ``-f json|yaml`` (the schema the
    README documents), the rich ``table`` for people, and flat ``rows`` of ``columns`` for ``-c``, ``-f value``
    and ``-f csv`` (cliff's formatters). ``exit_code`` is the command's exit code."""

    document: Any
    table: Callable[[Any], None] | None = None
    columns: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    exit_code: int = 0


_emitted = False  # a document is on stdout already: an error after it must not add a second one


def emit(data: Any, fmt: str, *, table: Callable[[Any], None] | None = None, out: TextIO | None = None) -> None:
    """Write ``data`` as one JSON or YAML document (the exact strings: the encoders escape them), or call
    ``table`` to render it for people (which must show tenant text through :mod:`lbswap.textsafe`)."""
    global _emitted
    out = out or sys.stdout
    if fmt == "table" and table is not None:
        table(data)
        return
    if fmt == "yaml":
        text = yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False)
    else:
        text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    _emitted = True
    out.write(text)  # one write: an interrupt cannot leave half a document followed by an error document
    out.flush()


def _rich_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stdout. Cells are shown as text: tenant names never become markup, links or escapes."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=rich_text(title), show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[v if isinstance(v, Text) else rich_text(v) for v in row])
    Console(file=sys.stdout, width=max(120, Console().width)).print(table)


# --- main --------------------------------------------------------------------------------------------------


def _format_in(argv: Sequence[str]) -> str:
    """The ``-f``/``--format`` that argv asks for, read without argparse (which may be what failed)."""
    fmt = "table"
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("-f", "--format") and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif arg.startswith("--format="):
            fmt = arg.partition("=")[2]
        elif arg.startswith("-f") and not arg.startswith("--") and len(arg) > 2:
            fmt = arg[2:]
    return fmt if fmt in DOCUMENT_FORMATS else "table"


def _fail(message: str, exit_code: int, fmt: str, *, prefix: str = "lbswap: error: ") -> int:
    """One line on stderr; with ``-f json|yaml`` also the one document on stdout, unless one is there."""
    print(prefix + shown(message), file=sys.stderr, flush=True)
    if fmt in DOCUMENT_FORMATS and not _emitted:
        emit({"error": message, "exit_code": exit_code}, fmt)
    return exit_code


class _ShownFormatter(logging.Formatter):
    """Log lines quote tenant names too: each message is shown as one line (a traceback still follows)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = shown(record.message)
        return super().formatMessage(record)


def main(argv: Sequence[str] | None = None) -> int:
    global _emitted
    _emitted = False
    argv = list(sys.argv[1:] if argv is None else argv)
    fmt = _format_in(argv)
    try:
        return guarded(lambda: _run_app(argv), fmt)
    except BrokenPipeError:
        # the reader of stdout went away (`| head`): nobody is left to tell; no traceback on the way out
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run_app(argv: list[str]) -> int:
    from lbswap.cli.app import LbswapApp

    return LbswapApp().run(argv)


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ShownFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    # taskflow logs every failed step with a traceback at WARNING; lbswap reports failures itself
    for noisy in ("taskflow", "oslo_utils", "stevedore"):  # they log a dropped storage error as a traceback
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def guarded(call: Callable[[], int], fmt: str) -> int:
    """Run ``call``; an lbswap error, a stop or an interrupt becomes one line on stderr and its exit code (and,
    with ``-f json|yaml``, the one document on stdout). Used by ``lbswap`` and inside the ``openstack`` plugin."""
    try:
        return call()
    except LbswapError as exc:
        return _fail(str(exc), exc.exit_code, fmt)
    except StopSwap as exc:  # a signal, a lost lease, a lost or full journal: stopped at a step boundary
        return _fail(exc.message, exc.exit_code, fmt, prefix="lbswap: ")
    except KeyboardInterrupt:
        return _fail(
            "interrupted; `lbswap resume` finishes or rolls back what was under way", 130, fmt, prefix="lbswap: "
        )
    except (BrokenPipeError, SystemExit):
        raise
    except Exception as exc:
        # a defect: keep the traceback for the bug report, but a JSON reader still gets its one document
        if fmt in DOCUMENT_FORMATS and not _emitted:
            emit({"error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 1}, fmt)
        raise
