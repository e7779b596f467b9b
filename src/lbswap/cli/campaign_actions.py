"""The handlers of the campaign commands (campaign.py): plan, run, status, resume, rollback, finalize, report
and recover. Each opens what it needs, calls the core and hands back an :class:`lbswap.cli.Output`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap import model
from lbswap.cli import Output, backend_spec, columns, journal_path, state_home
from lbswap.cli.campaign_render import (
    blocking_error,
    campaigns_output,
    plan_output,
    plan_rows,
    plan_table,
    recover_output,
    recover_table,
)
from lbswap.cli.common import SIGNAL_EXIT, cloud_from, handling_signals, select
from lbswap.cli.progress import ProgressView
from lbswap.clouds import Cloud, open_cloud
from lbswap.errors import BadInput
from lbswap.textsafe import shown

LOG = logging.getLogger("lbswap.journal")


@contextmanager
def stop_on_signals(campaigns: Callable[[], Sequence[str]]) -> Iterator[Any]:
    """SIGINT and SIGTERM ask every swap to stop at its next step boundary; a second SIGINT stops at once.

    ``campaigns`` names the campaigns under way when the signal comes, for the one line the operator reads.
    """
    import os
    import signal

    from lbswap.workflow.guard import StopRequest

    stop = StopRequest()
    codes = SIGNAL_EXIT

    def resume_command() -> str:
        names = list(campaigns())
        return f"lbswap resume {names[0]}" if len(names) == 1 else "lbswap resume"

    def handler(signum: int, _frame: Any) -> None:
        names = " ".join(campaigns()) or "(none started)"
        if stop.is_set():
            if signum == signal.SIGINT:  # the second Ctrl-C forces: what is in flight is left to resume
                line = f"lbswap: campaign {names} stopped at once; `{resume_command()}` finishes it\n"
                os.write(2, line.encode())
                os._exit(130)
            return
        what = signal.Signals(signum).name
        stop.set(
            f"interrupted ({what}): campaign {names} stopped at its next step boundary; "
            f"`{resume_command()}` finishes it",
            codes[signal.Signals(signum)],
        )

    with handling_signals(handler):
        yield stop


def _plan_options(args: argparse.Namespace) -> Any:
    from lbswap.clone import TargetChanges
    from lbswap.plan import PlanOptions

    return PlanOptions(
        strategy=args.strategy,
        target=TargetChanges(availability_zone=args.target_az, provider=args.target_provider),
        target_flavor=args.target_flavor,
        allow_downtime=args.allow_downtime,
        image_tag=args.image_tag,
        parallel=args.parallel,
        accept_address_change=args.accept_address_change,
        image_owner=args.image_owner,
        force=args.force,
        repair=args.repair,
        owned_tags=tuple(args.owned_tag),
        allow_owned=tuple(args.allow_owned),
        max_creating=args.max_creating,
        verify=args.verify,
        verify_path=args.verify_path,
        verify_host=args.verify_host,
        verify_udp_payload=args.verify_udp_payload,
        watch=args.watch,
        watch_max_errors=args.watch_max_errors,
    )


def _plans(cloud: Cloud, args: argparse.Namespace, chosen: list[model.LBSummary] | None = None) -> list[Any]:
    from lbswap.plan import make_plans

    chosen = select(cloud, args, default_all=False) if chosen is None else chosen
    if not chosen:
        raise BadInput("the selection matches no load balancer")
    return make_plans(cloud, [lb.id for lb in chosen], _plan_options(args))


def cmd_plan(args: argparse.Namespace) -> Output:
    with cloud_from(args) as cloud:
        plans = _plans(cloud, args)
    return plan_output(plans, 2 if any(p.blocking for p in plans) else 0)


def _swap_options(args: argparse.Namespace) -> Any:
    from lbswap.workflow.runner import SwapOptions

    return SwapOptions(
        drain_timeout=args.drain_timeout,
        stats_interval=args.stats_interval,
        keep_source_minutes=args.keep_source,
        image_tag=args.image_tag,
        image_owner=args.image_owner,
        force=args.force,
        repair=args.repair,
        verify=args.verify,
        verify_path=args.verify_path,
        verify_host=args.verify_host,
        verify_udp_payload=args.verify_udp_payload,
        settle_timeout=args.settle_timeout,
        watch=args.watch,
        watch_max_errors=args.watch_max_errors,
    )


def cmd_run(args: argparse.Namespace) -> Output:
    from lbswap.cli.conductor import jobboard_from, run_on_jobboard
    from lbswap.journal import Journal
    from lbswap.workflow.runner import new_campaign_id, run_campaign

    board = jobboard_from(args) if args.jobboard else None  # its options checked before anything is read
    journal = Journal(journal_location(args))
    journal.backend  # noqa: B018 - taskflow's tables now, so that a full disk shows before anything changes
    with cloud_from(args) as cloud:
        chosen = select(cloud, args, default_all=False)
        journal.check_free([lb.id for lb in chosen])  # before planning: the holder is the clearest reason
        plans = _plans(cloud, args, chosen)
        if any(p.blocking for p in plans):
            raise blocking_error(plans)
        if args.dry_run:
            return plan_output(plans, 0)
        if not args.yes:
            _confirm(plans, args)
        if args.jobboard or args.wait:  # scale-out: conductors drive the swaps (cli/conductor.py)
            return run_on_jobboard(args, cloud, journal, plans, board)
        campaign_id = new_campaign_id()
        with (
            stop_on_signals(lambda: [campaign_id]) as stop,
            ProgressView(plans, enabled=args.format == "table") as view,
        ):
            result = run_campaign(
                cloud,
                journal,
                plans,
                _swap_options(args),
                policy=_policy(args),
                on_event=view,
                campaign_id=campaign_id,
                stop=stop,
            )
    return _campaigns([result], args)


def _policy(args: argparse.Namespace) -> Any:
    from lbswap.workflow.runner import FleetPolicy

    return FleetPolicy(
        parallel=args.parallel,
        canary=args.canary,
        max_failures=args.max_failures or None,
        rate=args.rate,
        max_creating=args.max_creating,
    )


def _confirm(plans: Sequence[Any], args: argparse.Namespace) -> None:
    if not sys.stdin.isatty():
        raise BadInput("not a terminal: review `lbswap plan`, then run again with --yes")
    plan_table(plan_rows(plans))
    answer = input(f"Upgrade {len(plans)} load balancer(s) as planned? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise BadInput("cancelled; nothing changed")


def _campaigns(results: Sequence[Any], args: argparse.Namespace) -> Output:
    """What a campaign command shows, after writing each campaign's report for the change ticket."""
    from lbswap.report import write_report

    output = campaigns_output(results, args)
    for result in results:
        if result.swaps:
            try:
                path = write_report(result, state_home() / "reports")
            except OSError as exc:  # the campaign itself is recorded; only the ticket attachment is missing
                print(f"lbswap: warning: no report written: {shown(exc)}", file=sys.stderr)
            else:
                print(f"report: {shown(path)}", file=sys.stderr)
    return output


def journal_location(args: argparse.Namespace) -> Any:
    """``--journal``: a path (SQLite; the default under $XDG_STATE_HOME), or a database server's URL whose
    password comes from ``--journal-password-file`` or ``LBSWAP_JOURNAL_PASSWORD`` (a :class:`Server`, the
    password masked in every log line from now on).

    :raises ConfigError: a URL lbswap does not take, or a password file others may read.
    """
    from lbswap.credentials import redact_logs
    from lbswap.journal_db import Server, location

    password_file = getattr(args, "journal_password_file", None)
    if not args.journal:
        if password_file:
            raise BadInput(
                "--journal-password-file goes with a server's --journal URL (mysql+pymysql://, postgresql+psycopg://)"
            )
        return journal_path(args)
    where = location(args.journal, password_file=password_file)
    if not isinstance(where, Server):
        if password_file:
            raise BadInput("--journal-password-file goes with a server's --journal URL, not a file")
        return where
    redact_logs(where.password)
    if where.password_from == "url":  # noqa: S105 - where it came from
        LOG.warning(
            "the journal's password is in its URL, so in the process list: give it in LBSWAP_JOURNAL_PASSWORD or "
            "--journal-password-file"
        )
    return where


def _journal(args: argparse.Namespace, *, for_writing: bool = True) -> Any:
    from lbswap.journal import Journal

    path = journal_location(args)
    if isinstance(path, Path) and not path.exists():
        raise BadInput(
            f"no journal at {path}: no campaign has run with it (use --journal PATH); "
            "if it was lost, `lbswap recover` finds unfinished swaps from the cloud's marker tags"
        )
    return Journal(path, for_writing=for_writing)


def _unfinished(journal: Any, campaign: str | None) -> list[str]:
    from lbswap.workflow.runner import status

    return [r.campaign_id for r in status(journal, campaign) if r.state == "unfinished"]


def _cloud_if_given(args: argparse.Namespace) -> Cloud | None:
    """Resume and rollback reopen the campaign's own backend unless the operator names one."""
    return open_cloud(backend_spec(args)) if (args.backend or args.os_cloud) else None


def cmd_status(args: argparse.Namespace) -> Output:
    from lbswap.workflow.runner import status

    results = status(_journal(args, for_writing=False), args.campaign)
    output = _campaigns(results, args)
    output.exit_code = 0
    return output


def cmd_resume(args: argparse.Namespace) -> Output:
    from lbswap.workflow.runner import resume

    journal = _journal(args)
    under_way = _unfinished(journal, args.campaign)
    with stop_on_signals(lambda: under_way) as stop, ProgressView([], enabled=args.format == "table") as view:
        results = resume(journal, args.campaign, on_event=view, cloud=_cloud_if_given(args), stop=stop)
    return _campaigns(results, args)


def cmd_rollback(args: argparse.Namespace) -> Output:
    """Exit 1 when a swap it was asked to roll back is not rolled back (refused, or the rollback failed)."""
    from lbswap.workflow.runner import rollback

    journal = _journal(args)
    with stop_on_signals(lambda: [args.campaign]) as stop, ProgressView([], enabled=args.format == "table") as view:
        result = rollback(journal, args.campaign, lb_id=args.lb, on_event=view, cloud=_cloud_if_given(args), stop=stop)
    output = _campaigns([result], args)
    if args.lb:  # asked for this one, whatever its state
        left = [s for s in result.swaps if args.lb in (s.id, s.name) and s.state != "rolled_back"]
    else:  # asked for every swap not already done or rolled back: those must now be rolled back
        left = [s for s in result.swaps if s.state not in ("rolled_back", "done")]
    output.exit_code = 1 if left else 0
    return output


def cmd_finalize(args: argparse.Namespace) -> Output:
    from lbswap.workflow.runner import finalize

    journal = _journal(args)
    with stop_on_signals(lambda: [args.campaign]) as stop, ProgressView([], enabled=args.format == "table") as view:
        result = finalize(journal, args.campaign, on_event=view, cloud=_cloud_if_given(args), stop=stop)
    return _campaigns([result], args)


def cmd_recover(args: argparse.Namespace) -> Output:
    from lbswap import recover
    from lbswap.journal import Journal
    from lbswap.workflow.tasks import SwapOptions

    with cloud_from(args) as cloud:
        found = recover.find(cloud, campaign=args.campaign)
        path = journal_location(args)
        # a live driver of one of these campaigns: leave it be
        if not isinstance(path, Path) or (path.exists() and path.stat().st_size):
            journal = Journal(path, for_writing=False)
            for item in found:
                lease = journal.lease(item.campaign) if item.campaign else None
                if lease is not None and lease.holder.alive():
                    raise BadInput(
                        f"campaign {item.campaign} is being driven by {lease.describe()}: "
                        "recover is for campaigns whose journal is lost; let it finish"
                    )
        rows = [r.to_json() for r in found]
        if args.dry_run or not found:
            return recover_output(rows, 0)
        if not args.yes:
            if not sys.stdin.isatty():
                raise BadInput("not a terminal: review `lbswap recover --dry-run`, then run again with --yes")
            recover_table(rows)
            if input(f"Carry out {len(rows)} recovery action(s)? [y/N] ").strip().lower() not in ("y", "yes"):
                raise BadInput("cancelled; nothing changed")
        view = ProgressView([], enabled=args.format == "table")
        with view:
            done = recover.carry_out(
                cloud,
                found,
                options=SwapOptions(drain_timeout=args.drain_timeout),
                emit=lambda lb, step, status, message: view(_RecoverEvent(lb, step, status, message)),
            )
    results = [{**item.to_json(), "error": error} for item, error in done]
    return recover_output(results, 1 if any(error for _item, error in done) else 0)


class _RecoverEvent:
    def __init__(self, lb_id: str, step: str, status: str, message: str) -> None:
        self.lb_id, self.lb_name, self.step, self.status, self.message = lb_id, "", step, status, message


def cmd_report(args: argparse.Namespace) -> Output:
    from lbswap.report import write_report
    from lbswap.workflow.runner import status

    (result,) = status(_journal(args), args.campaign)
    directory = Path(args.output) if args.output else state_home() / "reports"
    try:
        path = write_report(result, directory)
    except OSError as exc:
        raise BadInput(f"cannot write the report to {directory}: {exc.strerror or exc}") from None
    document = {"markdown": str(path), "json": str(path.with_suffix(".json"))}
    return Output(
        document, lambda d: print(shown(d["markdown"])), columns.REPORT, [(document["markdown"], document["json"])]
    )
