"""Campaign reports an operator can attach to a change ticket: JSON (the CLI's schema) and Markdown.

Pure rendering plus one write; built from ``CampaignResult.to_json()`` so the two never disagree.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from lbswap.textsafe import markdown as md
from lbswap.textsafe import markdown_code as code


class _Campaign(Protocol):
    campaign_id: str

    def to_json(self) -> dict[str, Any]: ...


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _counts(swaps: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for swap in swaps:
        counts[swap["state"]] = counts.get(swap["state"], 0) + 1
    return ", ".join(f"{n} {md(state)}" for state, n in sorted(counts.items()))


def _drained(drain: dict[str, Any]) -> str:
    """One line: how the source's drain ended (its record in the result: workflow/waits.py ``drain``)."""
    seconds, deadline = drain.get("seconds"), drain.get("deadline_seconds")
    if drain.get("drained"):
        return f"Drain: no connection open on the source after {seconds or 0:.0f} s (deadline {deadline or 0:.0f} s)."
    if drain.get("open") is None:
        return "Drain: none (no drain deadline): connections still open on the source were cut at the retire."
    return (
        f"Drain: the deadline ({deadline or 0:.0f} s) passed with {int(drain['open'])} connection(s) open on the "
        "source, cut at the retire."
    )


def render_markdown(data: dict[str, Any]) -> str:
    """The report as Markdown. Every value from the cloud or the journal is tenant text: escaped, so a name
    cannot add a column, a link, HTML or emphasis (see :mod:`lbswap.textsafe`)."""
    swaps = data.get("swaps", [])
    lines = [
        f"# lbswap campaign {md(data['campaign_id'])}",
        "",
        f"- backend: {code(data.get('backend', '?'))}",
        f"- state: **{md(data.get('state', '?'))}**",
        f"- load balancers: {len(swaps)} ({_counts(swaps)})",
        "",
        "| load balancer | strategy | state | clone | floating IPs moved | took | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for swap in swaps:
        took = sum(step.get("seconds") or 0 for step in swap.get("steps", {}).values())
        flips = ", ".join(f"{md(f['floating_ip_address'])} at {_when(f.get('at'))}" for f in swap.get("flips", []))
        lines.append(
            f"| {md(swap['name'])} ({code(swap['id'])}) | {md(swap['strategy'])} | {md(swap['state'])} | "
            f"{code(swap.get('clone_id') or '-')} | {flips or '-'} | {took:.0f} s | {md(swap.get('error') or '')} |"
        )
    for swap in swaps:
        lines += [
            "",
            f"## {md(swap['name'])} ({code(swap['id'])})",
            "",
            "| step | started | seconds |",
            "|---|---|---|",
        ]
        for step, timing in swap.get("steps", {}).items():
            seconds = timing.get("seconds")
            lines.append(
                f"| {md(step)} | {_when(timing.get('started'))} | {'-' if seconds is None else f'{seconds:.1f}'} |"
            )
        drain = swap.get("drain")
        if drain:
            lines += ["", _drained(drain)]
        if swap.get("kubernetes_annotation"):
            lines += ["", f"Kubernetes: update the Service annotation {code(swap['kubernetes_annotation'])}."]
    return "\n".join(lines) + "\n"


def write_report(result: _Campaign, directory: Path) -> Path:
    """Write ``<campaign>.json`` and ``<campaign>.md`` under ``directory``; return the Markdown path.

    Reports name a project's load balancers and addresses: the files are 0600 and a directory made here
    0700 (an existing directory is the operator's and keeps its mode). Each file is replaced atomically.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = result.to_json()
    json_path = directory / f"{result.campaign_id}.json"
    md_path = directory / f"{result.campaign_id}.md"
    for path, text in ((json_path, json.dumps(data, indent=2) + "\n"), (md_path, render_markdown(data))):
        _write_private(path, text)
    return md_path


def _write_private(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
