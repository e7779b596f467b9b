"""Command line: parse, call the core, render. The only module that prints.

Every lbswap error ends as one line on stderr and the error's exit code: 0 all done, 1 some load balancer
failed or was rolled back, 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from lbswap import __version__
from lbswap.errors import BadInput, ConfigError, LbswapError, StopSwap
from lbswap.textsafe import rich_text, shown

log = logging.getLogger("lbswap")

FORMATS = ("table", "json", "yaml")
STRATEGIES = ("auto", "fip-swap", "failover", "recreate")


# --- argument parsing ------------------------------------------------------------------------------------


def _add_globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Global options, accepted before or after the command (OpenStack-client habit: `-f json` last)."""
    default: Any = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("cloud and output")
    group.add_argument("--os-cloud", default=default, metavar="NAME", help="cloud in clouds.yaml (env OS_CLOUD)")
    group.add_argument(
        "--backend",
        default=default,
        metavar="SPEC",
        help="fake:PATH | local[:STATE_DIR] | openstack[:CLOUD] (env LBSWAP_BACKEND; default local)",
    )
    group.add_argument("--journal", default=default, metavar="PATH", help="campaign journal (SQLite file)")
    group.add_argument("-f", "--format", default="table" if top else argparse.SUPPRESS, choices=FORMATS)
    group.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection")
    group.add_argument("--lb", action="append", default=[], metavar="ID_OR_NAME", help="repeatable")
    group.add_argument("--all", action="store_true", help="every load balancer visible to you")
    group.add_argument("--project", metavar="PROJECT_ID")
    group.add_argument("--tag", metavar="TAG")
    group.add_argument("--provider", metavar="NAME", help="only load balancers of this provider")
    group.add_argument("--stale-image", action="store_true", help="only LBs with an amphora on an older image")
    group.add_argument(
        "--image-tag", default="amphora", help="the amphora image tag where the flavor sets none (default: amphora)"
    )
    group.add_argument("--image-owner", metavar="PROJECT_ID", help="only images of this owner (amp_image_owner_id)")
    group.add_argument("--older-than", type=_non_negative_float, metavar="DAYS", help="amphorae older than DAYS")
    group.add_argument(
        "--cert-expiring-within", type=_non_negative_float, metavar="DAYS", help="amphora certificates expiring soon"
    )
    group.add_argument(
        "--force", action="store_true", help="rotate even amphorae on the newest image (after a CA or key change)"
    )
    group.add_argument("--repair", action="store_true", help="load balancers in ERROR, through Octavia's failover")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("swap")
    group.add_argument("--strategy", default="auto", choices=STRATEGIES)
    group.add_argument("--target-flavor", metavar="NAME_OR_ID")
    group.add_argument("--target-az", metavar="ZONE")
    group.add_argument("--target-provider", metavar="NAME")
    group.add_argument("--drain-timeout", type=_non_negative_float, default=300.0, metavar="SECONDS")
    group.add_argument("--keep-source", type=_non_negative_float, default=0.0, metavar="MINUTES")
    group.add_argument("--allow-downtime", action="store_true", help="consent to the downtime the plan states")
    group.add_argument("--parallel", type=_positive_int, default=1, metavar="N", help="swaps at once (default 1)")
    group.add_argument(
        "--canary", type=_non_negative_int, default=1, metavar="N", help="swaps run alone first; a failure stops all"
    )
    group.add_argument(
        "--max-failures",
        type=_non_negative_int,
        default=1,
        metavar="N",
        help="circuit breaker: start no swap after N failed or rolled back (default 1; 0 = never stop)",
    )
    group.add_argument(
        "--rate", type=_positive_float, metavar="N", help="start at most N swaps per minute (pace a large fleet)"
    )
    group.add_argument("--max-creating", type=_positive_int, metavar="N", help="at most N clones being built at once")
    group.add_argument(
        "--accept-address-change",
        action="store_true",
        help="allow a fip-swap that changes an address without a floating IP in front (the plan names them)",
    )
    group.add_argument(
        "--owned-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="load balancers with this tag are held by a tool of yours (repeatable): blocked unless allowed",
    )
    group.add_argument(
        "--allow-owned",
        type=_kinds,
        default=(),
        metavar="KIND[,KIND]",
        help="proceed with load balancers held by: kubernetes, cluster-api, heat, magnum, tagged",
    )
    check = parser.add_argument_group("verify and watch (fip-swap)")
    check.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="flip without first sending traffic through the clone on a temporary floating IP",
    )
    check.add_argument("--verify-path", default="/", metavar="PATH", help="HTTP path the verify requests (default /)")
    check.add_argument("--verify-host", metavar="NAME", help="Host header and TLS SNI the verify sends")
    check.add_argument(
        "--verify-udp-payload", metavar="TEXT", help="a datagram a UDP listener answers (else UDP is not verified)"
    )
    check.add_argument(
        "--watch",
        type=_non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="after the flip, watch the clone this long and flip back by itself if it fails (default 60; 0: off)",
    )
    check.add_argument(
        "--watch-max-errors",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="the watch flips back once request errors plus failed probes pass N (default 2)",
    )


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        choices=("refuse", "http-503", "reset", "stall"),
        help="publish-image: every amphora booted from it refuses, answers 503, resets or stalls its listeners",
    )
    parser.add_argument(
        "--fault-after",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="publish-image: the fault shows only this long after the amphora started",
    )


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):  # inf and nan parse as floats but would end up in the journal as non-JSON
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0")
    return value


def _kinds(text: str) -> tuple[str, ...]:
    from lbswap.planning.owners import KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(KINDS)}")
    return kinds


def _probability(text: str) -> float:
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be {minimum} or more")
        return value

    return parse


_non_negative_int = _whole_number(0)
_positive_int = _whole_number(1)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 like every other bad input."""

    def error(self, message: str) -> Any:
        raise BadInput(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lbswap", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lbswap {__version__}")
    _add_globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_globals(p, top=False)
        return p

    p = command("inventory", "list load balancers with their floating IPs and amphora images")
    _add_selection(p)
    p = command("snapshot", "print the whole graph of the selected load balancers as JSON (a restorable backup)")
    _add_selection(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p = command("plan", "show the strategy, downtime and pre-flight findings per load balancer; changes nothing")
    _add_selection(p)
    _add_run_options(p)
    p = command("run", "upgrade the selected load balancers")
    _add_selection(p)
    _add_run_options(p)
    p.add_argument("--dry-run", action="store_true", help="plan only, change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = command("status", "show campaigns and what each load balancer went through")
    p.add_argument("campaign", nargs="?")
    p.add_argument("--show-skipped", action="store_true", help="list skipped swaps one by one (table format)")
    p = command("resume", "finish or roll back unfinished campaigns (all of them without an argument)")
    p.add_argument("campaign", nargs="?")
    p = command("rollback", "move floating IPs back to the sources and delete the clones")
    p.add_argument("campaign")
    p.add_argument("--lb", metavar="ID", help="only this load balancer")
    p = command("finalize", "retire the sources a campaign kept (--keep-source)")
    p.add_argument("campaign")
    p = command(
        "recover",
        "without a journal: find unfinished swaps by their marker tags (clones beside their sources, temporary "
        "floating IPs) and finish or roll back each",
    )
    p.add_argument("--campaign", metavar="ID", help="only clones this campaign made")
    p.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--drain-timeout", type=_non_negative_float, default=300.0, metavar="SECONDS")
    p = command("report", "write a campaign's report (Markdown and JSON) for a change ticket")
    p.add_argument("campaign")
    p.add_argument("-o", "--output", metavar="DIR", help="directory (default: the journal's reports/)")

    fake = command("fake", "rehearse on the file-backed simulator")
    fake_sub = fake.add_subparsers(dest="fake_command", metavar="ACTION", parser_class=_Parser, required=True)
    p = fake_sub.add_parser("seed", help="create a simulated cloud")
    _add_globals(p, top=False)
    p.add_argument("path")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sample", type=_positive_int, metavar="N", help="N varied sample load balancers")
    src.add_argument("--from-snapshot", metavar="FILE", help="the output of `lbswap snapshot`")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace the simulated cloud already at PATH")
    p = fake_sub.add_parser("faults", help="inject faults into a simulated cloud")
    _add_globals(p, top=False)
    p.add_argument("path")
    p.add_argument("--latency", type=_non_negative_float, metavar="SECONDS")
    p.add_argument("--fail-at", type=_positive_int, metavar="N")
    p.add_argument("--fail-kind", choices=("error", "timeout", "error-status"), default="error")
    p.add_argument("--fail-probability", type=_probability, metavar="P")
    p.add_argument("--crash-at", type=_positive_int, metavar="N")
    p.add_argument("--drain-seconds", type=_non_negative_float, metavar="SECONDS")
    p.add_argument(
        "--fail-reads", type=_probability, metavar="P", help="each read call fails with a 503 with probability P"
    )
    p.add_argument("--clear", action="store_true")
    p = fake_sub.add_parser("publish-image", help="publish a newer amphora image")
    _add_globals(p, top=False)
    p.add_argument("path")
    p.add_argument("--name", default="amphora-new")
    p.add_argument("--tag", action="append", default=[])
    _add_fault_options(p)

    local = command("local", "the local data plane (root): a cloud of namespaces, haproxy and nftables")
    local.add_argument("action", choices=("up", "down", "status", "publish-image"))
    local.add_argument(
        "--sample", type=_non_negative_int, default=0, metavar="N", help="up: also create N load balancers"
    )
    local.add_argument(
        "--boot-seconds",
        type=_non_negative_float,
        metavar="SECONDS",
        help="up: the modeled amphora boot/plug window of creates and failovers (default 3)",
    )
    local.add_argument("--flush-conntrack", action="store_true", help="up: flush conntrack when a FIP moves")
    local.add_argument("--name", default="amphora-new", help="publish-image: the image name")
    local.add_argument("--tag", action="append", default=[], help="publish-image: tags (default amphora)")
    local.add_argument("--template", default="v2", choices=("v1", "v2"), help="publish-image: haproxy template")
    local.add_argument("image", nargs="?", help="publish-image: the image name (as --name)")
    _add_fault_options(local)

    p = command("demo", "bring up a local cloud and upgrade it under load, fip-swap next to failover")
    p.add_argument("--state-dir", metavar="DIR")
    p.add_argument("--keep", action="store_true", help="leave the local cloud up afterwards")
    p.add_argument(
        "--boot-seconds",
        type=_non_negative_float,
        default=3.0,
        metavar="SECONDS",
        help="the modeled amphora rebuild window (default 3; Octavia's is tens of seconds)",
    )
    p.add_argument("--rate", type=_non_negative_float, default=200.0, help="new connections/s per floating IP")
    return parser


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
    return fmt if fmt in FORMATS else "table"


def _fail(message: str, exit_code: int, fmt: str, *, prefix: str = "lbswap: error: ") -> int:
    """One line on stderr; with ``-f json|yaml`` also the one document on stdout, unless one is there."""
    print(prefix + shown(message), file=sys.stderr, flush=True)
    if fmt != "table" and not _emitted:
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
        return _main(argv, fmt)
    except BrokenPipeError:
        # the reader of stdout went away (`| head`): nobody is left to tell; no traceback on the way out
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str], fmt: str) -> int:
    try:
        args = build_parser().parse_args(argv)
    except BadInput as exc:
        return _fail(str(exc), exc.exit_code, fmt)
    fmt = args.format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ShownFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[handler])
    # taskflow logs every failed step with a traceback at WARNING; lbswap reports failures itself
    for noisy in ("taskflow", "oslo_utils"):  # they log a dropped storage error as a traceback
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    if not args.command:
        return _fail("lbswap: give a command (see --help)", 2, fmt)
    from lbswap.cli import commands

    try:
        return commands.dispatch(args)
    except LbswapError as exc:
        return _fail(str(exc), exc.exit_code, fmt)
    except StopSwap as exc:  # a signal, a lost lease, a lost or full journal: stopped at a step boundary
        return _fail(exc.message, exc.exit_code, fmt, prefix="lbswap: ")
    except KeyboardInterrupt:
        return _fail(
            "interrupted; `lbswap resume` finishes or rolls back what was under way", 130, fmt, prefix="lbswap: "
        )
    except BrokenPipeError:
        raise
    except Exception as exc:
        # a defect: keep the traceback for the bug report, but a JSON reader still gets its one document
        if fmt != "table" and not _emitted:
            emit({"error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 1}, fmt)
        raise
