"""Campaign reports an operator can attach to a change ticket: JSON (the CLI's schema) and Markdown.

Pure rendering plus one write; built from ``CampaignResult.to_json()`` so the two never disagree.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol


class _Campaign(Protocol):
    campaign_id: str

    def to_json(self) -> dict[str, Any]: ...


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def render_markdown(data: dict[str, Any]) -> str:
    swaps = data.get("swaps", [])
    counts: dict[str, int] = {}
    for swap in swaps:
        counts[swap["state"]] = counts.get(swap["state"], 0) + 1
    lines = [
        f"# lbswap campaign {data['campaign_id']}",
        "",
        f"- backend: `{data.get('backend', '?')}`",
        f"- state: **{data.get('state', '?')}**",
        f"- load balancers: {len(swaps)} (" + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ")",
        "",
        "| load balancer | strategy | state | clone | floating IPs moved | took | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for swap in swaps:
        took = sum(step.get("seconds") or 0 for step in swap.get("steps", {}).values())
        flips = ", ".join(f"{f['floating_ip_address']} at {_when(f.get('at'))}" for f in swap.get("flips", []))
        lines.append(
            f"| {swap['name']} (`{swap['id']}`) | {swap['strategy']} | {swap['state']} | "
            f"`{swap.get('clone_id') or '-'}` | {flips or '-'} | {took:.0f} s | "
            f"{(swap.get('error') or '').replace('|', '/')} |"
        )
    for swap in swaps:
        lines += ["", f"## {swap['name']} (`{swap['id']}`)", "", "| step | started | seconds |", "|---|---|---|"]
        for step, timing in swap.get("steps", {}).items():
            seconds = timing.get("seconds")
            lines.append(
                f"| {step} | {_when(timing.get('started'))} | {'-' if seconds is None else f'{seconds:.1f}'} |"
            )
        if swap.get("kubernetes_annotation"):
            lines += ["", f"Kubernetes: update the Service annotation `{swap['kubernetes_annotation']}`."]
    return "\n".join(lines) + "\n"


def write_report(result: _Campaign, directory: Path) -> Path:
    """Write ``<campaign>.json`` and ``<campaign>.md`` under ``directory``; return the Markdown path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = result.to_json()
    json_path = directory / f"{result.campaign_id}.json"
    md_path = directory / f"{result.campaign_id}.md"
    for path, text in ((json_path, json.dumps(data, indent=2) + "\n"), (md_path, render_markdown(data))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return md_path
