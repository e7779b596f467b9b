"""Campaign commands: plan, run, status, resume, rollback, finalize, report, recover.

The same classes run as ``lbswap plan ...`` and ``openstack loadbalancer upgrade plan ...``.
"""

from __future__ import annotations

import argparse
from typing import Any

from lbswap.cli import campaign_actions
from lbswap.cli.base import DocumentLister
from lbswap.cli.conductor import add_jobboard_options
from lbswap.cli.options import add_run_options, add_selection, non_negative_float

Rows = tuple[tuple[str, ...], list[tuple[Any, ...]]]


class Plan(DocumentLister):
    """Show, per load balancer, the strategy, the downtime and every pre-flight finding. Changes nothing.

    Reads the selected load balancers and checks what an upgrade needs: quota, free addresses, readable TLS
    references, the target flavor or provider, owners (Kubernetes, Heat, Magnum, your tags), a floating IP for
    the verify's temporary address. Says what the verify will send each listener (or why it will not run) and
    how long the watch lasts. A finding marked BLOCKS stops `run` until it is fixed or allowed. Exit code 2 when
    any finding blocks.
    """

    name = "plan"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_selection(parser)
        add_run_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_plan(parsed_args))


class Run(DocumentLister):
    """Upgrade the selected load balancers blue/green. Changes the cloud.

    For each load balancer: plan it, build a clone on the new image (or flavor, zone, provider), wait until it
    is ACTIVE, move its floating IPs with compare-and-swap, drain the source and delete it (or keep it for
    --keep-source minutes). A failure before the floating IPs move rolls back; every step is journaled, so
    `resume` finishes or rolls back after a crash. Asks for confirmation unless --yes; --dry-run only plans.
    Writes a report for the change ticket. Exit code 1 when a swap failed or was rolled back.
    """

    name = "run"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_selection(parser)
        add_run_options(parser)
        parser.add_argument("--dry-run", action="store_true", help="plan only, change nothing")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        add_jobboard_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_run(parsed_args))


class Status(DocumentLister):
    """Show campaigns and what each load balancer went through. Changes nothing.

    Without CAMPAIGN every campaign in the journal; the table leads with the count per state and the
    failures. -f json|yaml give the campaigns as documents; -c/-f value/-f csv one row per swap.
    """

    name = "status"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("campaign", nargs="?", metavar="CAMPAIGN", help="one campaign (default: all)")
        parser.add_argument("--show-skipped", action="store_true", help="list skipped swaps one by one (table)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_status(parsed_args))


class Resume(DocumentLister):
    """Finish or roll back unfinished campaigns (all of them without CAMPAIGN). Changes the cloud.

    After a crash, a lost connection or an interrupt: each swap continues from its last journaled step, or is
    rolled back if it had not moved a floating IP yet. Uses the campaign's own backend unless one is given.
    Exit code 1 when a swap failed or was rolled back.
    """

    name = "resume"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("campaign", nargs="?", metavar="CAMPAIGN", help="one campaign (default: all)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_resume(parsed_args))


class Rollback(DocumentLister):
    """Move floating IPs back to the sources and delete the clones of a campaign. Changes the cloud.

    Refuses a swap past its point of no return (its source already deleted). Exit code 1 when a swap it was
    asked to roll back is not rolled back.
    """

    name = "rollback"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("campaign", metavar="CAMPAIGN")
        parser.add_argument("--lb", metavar="ID", help="only this load balancer")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_rollback(parsed_args))


class Finalize(DocumentLister):
    """Delete the sources a campaign kept with --keep-source. Changes the cloud; no rollback after it."""

    name = "finalize"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("campaign", metavar="CAMPAIGN")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_finalize(parsed_args))


class Report(DocumentLister):
    """Write a campaign's report (Markdown and JSON) for a change ticket. Changes no cloud; writes two files."""

    name = "report"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("campaign", metavar="CAMPAIGN")
        parser.add_argument("-o", "--output", metavar="DIR", help="directory (default: the journal's reports/)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_report(parsed_args))


class Recover(DocumentLister):
    """Finish or roll back unfinished swaps found by their marker tags, without a journal. Changes the cloud.

    For when the journal is lost. Looks for clones standing beside their sources and temporary floating IPs
    that lbswap tagged. With --dry-run it only shows what it would do; otherwise it changes the cloud (after
    confirmation unless --yes). Refuses a campaign whose driver is still alive. Exit code 1 when a recovery
    action failed.
    """

    name = "recover"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--campaign", metavar="ID", help="only clones this campaign made")
        parser.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--drain-timeout", type=non_negative_float, default=300.0, metavar="SECONDS")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Rows:
        return self.show(campaign_actions.cmd_recover(parsed_args))
