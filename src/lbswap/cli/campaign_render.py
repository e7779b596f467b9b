"""What the campaign commands show: the plan and the campaigns as documents, rich tables and flat rows.

Pure rendering for campaign_actions.py: nothing here reads the cloud or the journal.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from lbswap.cli import Output, _rich_table, columns
from lbswap.errors import BadInput
from lbswap.textsafe import rich_text, shown


def plan_rows(plans: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.lb_id,
            "name": p.lb_name,
            "strategy": p.strategy,
            "downtime": p.downtime,
            "blocking": p.blocking,
            "addresses": [a.to_json() for a in p.addresses],
            "owners": [{"kind": o.kind, "owner": o.detail, "follow_up": o.follow_up} for o in p.owners],
            "findings": [{"code": f.code, "message": f.message, "blocking": f.blocking} for f in p.findings],
            "verify": {
                "runs": p.checks.verify,
                "detail": p.checks.verify_detail,
                "listeners": dict(p.checks.listeners),
            },
            "watch": {"seconds": p.checks.watch_seconds, "detail": p.checks.watch_detail},
        }
        for p in plans
    ]


def _checks_lines(row: dict[str, Any]) -> list[str]:
    """The plan's verify and watch, a line each and one per listener verified: what runs, or why not."""
    verify = row["verify"]
    lines = [f"verify: {verify['detail'] or '-'}"]
    lines += [f"  {label}: {what}" for label, what in verify["listeners"].items()]
    return [*lines, f"watch: {row['watch']['detail'] or '-'}"]


def plan_table(rows: list[dict[str, Any]]) -> None:
    from rich.text import Text

    newline = Text("\n")  # a line break between shown lines (rich_text would show it as an escape)
    _rich_table(
        "plan",
        columns.PLAN_TABLE,
        [
            (
                r["id"],
                r["name"],
                r["strategy"] or "-",
                r["downtime"],
                " ".join(a["address"] or "?" for a in r["addresses"] if not a["kept"]) or "none",
                newline.join(rich_text(line) for line in _checks_lines(r)),
                newline.join(rich_text(("BLOCKS: " if f["blocking"] else "") + f["message"]) for f in r["findings"])
                or "-",
            )
            for r in rows
        ],
    )


def blocking_error(plans: Sequence[Any]) -> BadInput:
    lines = [f.message for p in plans for f in p.findings if f.blocking]
    first = lines[0]
    more = f" (and {len(lines) - 1} more blocking finding(s): see `lbswap plan`)" if len(lines) > 1 else ""
    return BadInput(first + more)


def plan_output(plans: Sequence[Any], exit_code: int) -> Output:
    rows = plan_rows(plans)
    flat = [
        (
            r["id"],
            r["name"],
            r["strategy"] or "",
            r["downtime"],
            r["blocking"],
            " ".join(a["address"] or "?" for a in r["addresses"] if not a["kept"]),
            "; ".join(("BLOCKS: " if f["blocking"] else "") + f["message"] for f in r["findings"]),
            "; ".join([r["verify"]["detail"], *(f"{k}: {v}" for k, v in r["verify"]["listeners"].items())]),
            r["watch"]["detail"],
        )
        for r in rows
    ]
    return Output(rows, plan_table, columns.PLAN, flat, exit_code)


STATES = ("done", "running", "kept", "rolled_back", "failed", "skipped", "pending")
FAILURES = ("failed", "rolled_back")


def counts(swaps: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for swap in swaps:
        counts[swap["state"]] = counts.get(swap["state"], 0) + 1
    return counts


def campaigns_output(results: Sequence[Any], args: argparse.Namespace) -> Output:
    """The campaigns as ``status`` shows them; exit code 1 when a swap failed, was rolled back or skipped."""
    data = [{**r.to_json(), "counts": counts([s.to_json() for s in r.swaps])} for r in results]
    failed = any(s.state in ("failed", "rolled_back", "skipped") for r in results for s in r.swaps)
    flat = [
        (
            c["campaign_id"],
            s["id"],
            s["name"],
            s["strategy"],
            s["state"],
            s["clone_id"] or "",
            " ".join(f["floating_ip_address"] for f in s["flips"]),
            s["error"] or "",
        )
        for c in data
        for s in c["swaps"]
    ]
    return Output(
        data if len(data) != 1 or args.command in ("status", "resume") else data[0],
        lambda d: campaign_tables(d if isinstance(d, list) else [d], args),
        columns.SWAPS,
        flat,
        1 if failed else 0,
    )


def campaign_tables(campaigns: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    """Per campaign: the count per state first, then failures, then the rest; the skipped (a whole fleet
    after the breaker opened) in one line unless ``--show-skipped``."""
    show_skipped = getattr(args, "show_skipped", False)
    for campaign in campaigns:
        swaps = sorted(campaign["swaps"], key=lambda s: FAILURES.index(s["state"]) if s["state"] in FAILURES else 2)
        skipped = [s for s in swaps if s["state"] == "skipped"]
        shown_swaps = swaps if show_skipped else [s for s in swaps if s["state"] != "skipped"]
        counts = ", ".join(f"{state} {n}" for state, n in campaign["counts"].items())
        print(f"campaign {shown(campaign['campaign_id'])}: {len(swaps)} load balancer(s): {shown(counts)}")
        if shown_swaps:
            _rich_table(
                f"campaign {campaign['campaign_id']} ({campaign['state']}, backend {campaign['backend']})",
                columns.SWAPS_TABLE,
                [
                    (
                        s["id"],
                        s["name"],
                        s["strategy"],
                        s["state"],
                        s["clone_id"] or "-",
                        " ".join(f"{f['floating_ip_address']}" for f in s["flips"]) or "-",
                        s["error"] or "",
                    )
                    for s in shown_swaps
                ],
            )
        if skipped and not show_skipped:
            print(_skipped_line(skipped, campaign["campaign_id"], listing=args.command == "status"))


def _skipped_line(skipped: Sequence[dict[str, Any]], campaign_id: str, *, listing: bool) -> str:
    reasons = {re.sub(r"; nothing was changed on it$", "", s["error"] or "") for s in skipped}
    why = reasons.pop() if len(reasons) == 1 and next(iter(reasons)) else "not started"
    how = "--show-skipped lists them" if listing else f"`lbswap status {campaign_id} --show-skipped` lists them"
    return shown(f"{len(skipped)} skipped: {why}; nothing was changed on them ({how})")


def recover_output(rows: list[dict[str, Any]], exit_code: int) -> Output:
    flat = [
        (
            r["action"],
            r["source_id"] or "",
            r["source_name"],
            r["clone_id"] or "",
            r["campaign"] or "",
            " ".join(r["floating_ips"]),
            r["reason"],
            r.get("error") or "",
        )
        for r in rows
    ]
    return Output(rows, recover_table, columns.RECOVERY, flat, exit_code)


def recover_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("nothing to recover: no clone stands beside its source and no temporary floating IP is left")
        return
    _rich_table(
        "recovery",
        columns.RECOVERY_TABLE,
        [
            (
                r["action"],
                r["source_id"] or "-",
                r["source_name"],
                r["clone_id"] or "-",
                r["campaign"] or "-",
                " ".join(r["floating_ips"]) or "-",
                r["reason"],
                r.get("error") or "",
            )
            for r in rows
        ],
    )
