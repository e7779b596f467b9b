"""Scale-out commands: ``lbswap conductor`` and the ``--jobboard``/``--wait`` options of ``run``.

``lbswap run --jobboard redis://HOST:PORT[/DB]`` records the campaign in the journal and posts one job per swap
on taskflow's Redis jobboard (``rediss://``: over TLS, the server's certificate checked against
``--jobboard-ca-file`` or the system's CAs); ``lbswap conductor`` processes (any number, sharing the journal:
on this host with a SQLite file, on several with ``--journal mysql+pymysql://...`` or
``postgresql+psycopg://...``) claim the jobs and drive the swaps with their own cloud credentials. The jobboard
password comes from ``--jobboard-password-file`` (mode 0600) or ``LBSWAP_JOBBOARD_PASSWORD``, the journal's from
``--journal-password-file`` or ``LBSWAP_JOURNAL_PASSWORD``; in a URL a password shows in the process list, so
that form is discouraged. Neither is ever printed: addresses are shown masked.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lbswap import cli
from lbswap.cli.base import DocumentCommand
from lbswap.cli.options import positive_float, positive_int
from lbswap.errors import BadInput
from lbswap.textsafe import shown

LOG = logging.getLogger("lbswap.scaleout")


def add_jobboard_options(parser: argparse.ArgumentParser) -> None:
    """``run``'s scale-out options."""
    group = parser.add_argument_group("scale-out (lbswap conductor processes drive the swaps)")
    _board_options(group, required=False)
    group.add_argument(
        "--wait", action="store_true", help="with --jobboard: follow the campaign until the conductors ended it"
    )


def _board_options(group: Any, *, required: bool) -> None:
    group.add_argument(
        "--jobboard",
        metavar="URL",
        required=required,
        help="redis://HOST:PORT[/DB], or rediss:// for TLS: post one job per swap there (the password: "
        "LBSWAP_JOBBOARD_PASSWORD or --jobboard-password-file; redis://:PASSWORD@... shows in the process list and "
        "is discouraged)",
    )
    group.add_argument(
        "--jobboard-password-file", metavar="FILE", help="the jobboard's password, in a file of mode 0600"
    )
    group.add_argument(
        "--jobboard-ca-file",
        metavar="FILE",
        help="with rediss://: the CA certificate(s), PEM, that the server's certificate is checked against "
        "(default: the system's CAs; the certificate and its host name are always checked)",
    )


def jobboard_from(args: argparse.Namespace) -> Any:
    """The jobboard ``--jobboard`` and its options name (a :class:`~lbswap.scaleout.board.Board`), its password
    masked in every log line from now on.

    :raises ConfigError: one line: a malformed URL, an unreadable password or CA file.
    """
    from lbswap.scaleout.board import parse, redact_logs

    board = parse(args.jobboard, password_file=args.jobboard_password_file, ca_file=args.jobboard_ca_file)
    redact_logs(board)
    if board.password_from == "url":  # noqa: S105 - where it came from
        LOG.warning(
            "the jobboard password is in the URL, so in the process list: give it in LBSWAP_JOBBOARD_PASSWORD or "
            "--jobboard-password-file"
        )
    return board


def run_on_jobboard(
    args: argparse.Namespace, cloud: Any, journal: Any, plans: Sequence[Any], board: Any = None
) -> cli.Output:
    """``run --jobboard``: record, post, and with ``--wait`` follow until the campaign ended (``board``: the one
    :func:`jobboard_from` made of ``args`` beforehand)."""
    from lbswap.cli.campaign_actions import _campaigns, _policy, _swap_options
    from lbswap.scaleout.campaign import counts, post_campaign, wait
    from lbswap.workflow.runner import status

    if not args.jobboard:
        raise BadInput("--wait follows a campaign the conductors drive: give --jobboard too")
    board = board or jobboard_from(args)
    campaign_id, posted = post_campaign(cloud, journal, plans, _swap_options(args), _policy(args), board)
    print(
        f"campaign {campaign_id}: {posted} swap job(s) posted on jobboard {board.shown()}; `lbswap conductor` "
        f"processes drive them (`lbswap status {campaign_id}` follows)",
        file=sys.stderr,
    )
    if not args.wait:
        (result,) = status(journal, campaign_id)
        output = _campaigns([result], args)
        output.exit_code = 0
        return output

    def progress(result: Any) -> None:
        line = ", ".join(f"{state} {n}" for state, n in sorted(counts(result).items()))
        print(shown(f"campaign {campaign_id}: {line}"), file=sys.stderr, flush=True)

    return _campaigns([wait(journal, campaign_id, on_change=progress)], args)


@contextmanager
def _stop_on_signals() -> Iterator[Any]:
    from lbswap.cli.common import SIGNAL_EXIT, handling_signals
    from lbswap.workflow.guard import StopRequest

    stop = StopRequest()

    def handler(signum: int, _frame: Any) -> None:
        stop.set(
            f"conductor stopped ({signal.Signals(signum).name}); its swaps go back on the jobboard",
            SIGNAL_EXIT[signal.Signals(signum)],
        )

    with handling_signals(handler):
        yield stop


class Conductor(DocumentCommand):
    """Claim swap jobs from the jobboard and drive them, until SIGTERM or SIGINT. Changes the cloud.

    Any number of conductors share the journal (--journal: a file on this host, or mysql+pymysql://USER@HOST/DB
    or postgresql+psycopg://USER@HOST/DB for conductors on several hosts) and the jobboard; each drives the
    swaps of the campaigns made on its own cloud (--os-cloud/--cloud/--backend) and leaves the others' jobs
    on the board. The campaign's canary, circuit breaker and --parallel hold across all conductors. A
    conductor that dies is replaced: its claim expires (--claim-expiry) and another conductor continues its
    swap from the journal. On SIGTERM the swaps under way stop at their next step and go back on the board.
    """

    name = "conductor"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        group = parser.add_argument_group("jobboard")
        _board_options(group, required=True)
        group.add_argument("--cloud", metavar="NAME", help="the cloud in clouds.yaml (as --os-cloud)")
        group.add_argument("--workers", type=positive_int, default=1, metavar="N", help="swaps at once (default 1)")
        group.add_argument(
            "--claim-expiry",
            type=positive_float,
            default=30.0,
            metavar="SECONDS",
            help="a dead conductor's jobs are claimed again this long after it stopped (default 30)",
        )
        group.add_argument(
            "--lease-timeout",
            type=positive_float,
            metavar="SECONDS",
            help="a stopped conductor loses its swap after this long without a heartbeat (default: twice "
            "--claim-expiry)",
        )
        group.add_argument(
            "--heartbeat",
            type=positive_float,
            metavar="SECONDS",
            help="how often the claim and the swap's lease are renewed (default: a sixth of --claim-expiry)",
        )
        group.add_argument(
            "--poll", type=positive_float, default=2.0, metavar="SECONDS", help="how often an idle conductor looks"
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return self.render(cmd_conductor(parsed_args), parsed_args.format)


def cmd_conductor(args: argparse.Namespace) -> cli.Output:
    from lbswap.cli.campaign_actions import journal_location
    from lbswap.cli.common import cloud_from
    from lbswap.journal import Journal
    from lbswap.scaleout.board import connected
    from lbswap.scaleout.conductor import Conductor as Loop
    from lbswap.scaleout.conductor import Timing

    if args.cloud:
        if args.backend or args.os_cloud:
            raise BadInput("give one of --cloud, --os-cloud and --backend")
        args.os_cloud = args.cloud
    expiry = args.claim_expiry
    timing = Timing(
        claim_expiry=expiry,
        stale_after=args.lease_timeout or 2 * expiry,
        heartbeat=args.heartbeat or expiry / 6,
        poll=args.poll,
        retry=min(args.poll, expiry),
    )
    if timing.stale_after <= timing.heartbeat * 2 or timing.claim_expiry <= timing.heartbeat * 2:
        raise BadInput("--heartbeat must be under half of --claim-expiry and of --lease-timeout")
    board = jobboard_from(args)
    LOG.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    journal = Journal(journal_location(args))  # created when missing: conductors may start before any run
    with cloud_from(args) as cloud, connected(board) as jobboard, _stop_on_signals() as stop:
        loop = Loop(jobboard, board, journal, cloud, timing=timing, workers=args.workers, stop=stop)
        LOG.info(
            "conductor %s: jobboard %s, journal %s, cloud %s, %d worker(s)",
            loop.name,
            board.shown(),
            journal.path,
            cloud.identity(),
            loop.workers,
        )
        loop.run()
    document = {"conductor": loop.name, "jobboard": board.shown(), "stopped": stop.reason, **loop.counts}
    return cli.Output(document, lambda d: print(shown(", ".join(f"{k} {v}" for k, v in d.items()))))
