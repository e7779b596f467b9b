"""`lbswap demo`: a local cloud of real namespaces, several load balancers (SINGLE and ACTIVE_STANDBY, HTTP
and TCP listeners) behind floating IPs, a new image, and each twin upgraded under load: once with fip-swap,
once with Octavia's failover, measured by the probe. Writes a JSON report and, with matplotlib (the ``lab``
extra), a PNG timeline."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lbswap.clouds.local import LocalCloud
from lbswap.journal import Journal
from lbswap.lab.probe import Attempt, LongLived, ProbeProcess, Target, by_target, with_images
from lbswap.lab.shapes import SHAPES, seed
from lbswap.lab.timeline import write_timeline
from lbswap.plan import PlanOptions, make_plans
from lbswap.report import write_report
from lbswap.workflow.runner import CampaignResult, Event, SwapOptions, run_campaign

STRATEGIES = ("fip-swap", "failover")
LAB_OPTIONS = SwapOptions(
    drain_timeout=30.0,
    stats_interval=1.0,
    ready_timeout=120.0,
    delete_timeout=60.0,
    poll_initial=0.2,
    poll_max=1.0,
    verify_timeout=2.0,
    verify_settle=2.0,
    watch=10.0,
    watch_interval=0.5,
)
MARKED_STEPS = ("verify", "flip", "watch", "drain", "retire", "failover", "recreate")
# the "bad image" row: the same fip-swap against an image whose amphorae answer 503, caught by the verify
BAD_IMAGE = ("bad-image-single-http", "SINGLE", "HTTP", 80)
BAD_FAULT = "http-503"


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lbswap" / "demo"


def upgrade_under_load(
    cloud: LocalCloud,
    journal: Journal,
    lbs: dict[str, dict[str, Any]],
    strategy: str,
    workdir: Path,
    *,
    rate: float,
    long_lived: int,
    stream_seconds: float,
    options: SwapOptions = LAB_OPTIONS,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, Any]:
    """Start the probe on every floating IP, run one campaign (the real workflow), stop the probe."""
    marks: dict[str, list[tuple[str, str, float]]] = {name: [] for name in lbs}

    def record(event: Event) -> None:
        wanted = ("done",) if event.step == "flip" else ("start", "done", "failed")
        if event.step in MARKED_STEPS and event.status in wanted and event.lb_name in marks:
            marks[event.lb_name].append((event.step, event.status, event.at))
        if event.step == "flip" and event.status == "reverted" and event.lb_name in marks:  # the watch flipped back
            marks[event.lb_name].append(("flip back", "done", event.at))
        if on_event:
            on_event(event)

    targets = [Target(name, info["fip"], info["port"]) for name, info in lbs.items()]
    probe = ProbeProcess(
        f"{cloud.prefix}-client", targets, workdir, rate=rate, long_lived=long_lived, stream_seconds=stream_seconds
    )
    probe.start()
    t0 = time.time()
    try:
        time.sleep(1.0)  # steady traffic before anything changes
        plans = make_plans(
            cloud, [info["id"] for info in lbs.values()], PlanOptions(strategy=strategy, allow_downtime=True)
        )
        result = run_campaign(cloud, journal, plans, options, parallel=len(plans), on_event=record)
        time.sleep(1.0)
    except BaseException:
        probe.kill()
        raise
    probed = probe.stop()
    return {"result": result, "probe": probed, "marks": marks, "t0": t0}


def _rows(
    run: dict[str, Any], lbs: dict[str, dict[str, Any]], strategy: str, peers: dict[str, str], scenario: str
) -> list[dict[str, Any]]:
    result: CampaignResult = run["result"]
    attempts = with_images(run["probe"].attempts, peers)
    summaries = by_target(attempts, run["probe"].long_lived)
    swaps = {s.name: s for s in result.swaps}
    rows = []
    for name, info in lbs.items():
        summary, swap = summaries.get(name), swaps.get(name)
        seconds = sum(step.get("seconds") or 0 for step in swap.steps.values()) if swap else None
        rows.append(
            {
                "lb": name,
                "topology": info["topology"],
                "listener": info["protocol"],
                "strategy": strategy,
                "scenario": scenario,
                "state": swap.state if swap else "not run",
                "attempts": summary.attempts if summary else 0,
                "failed": summary.failed if summary else 0,
                "slow": summary.slow if summary else 0,
                "longest_gap_ms": summary.longest_gap_ms if summary else None,
                "max_latency_ms": summary.max_latency_ms if summary else None,
                "probe_spacing_ms": summary.probe_spacing_ms if summary else None,
                "long_lived_total": summary.long_lived_total if summary else 0,
                "long_lived_cut": summary.long_lived_cut if summary else 0,
                "upgrade_seconds": None if seconds is None else round(seconds, 1),
                "images_served": list(summary.images) if summary else [],
                # how long after the API answered the flip new connections reached the clone (the slowest
                # floating IP), as the post-flip check measured it; None for failover, or where not measured
                "api_to_clone_ms": _api_to_clone_ms(swap),
                # no probe met the source after the flip: the delay is an upper bound (the probe's own start)
                "api_to_clone_upper_bound": _upper_bound_only(swap),
                "settle": [s.get("outcome") for s in swap.settle or []] if swap else [],
                "verify": (swap.verify or {}).get("outcome") if swap else None,
                "watch": (swap.watch or {}).get("outcome") if swap else None,
                "error": swap.error if swap and swap.state != "done" else None,
            }
        )
    return rows


def _api_to_clone_ms(swap: Any) -> float | None:
    delays = [s["delay_seconds"] for s in (swap.settle or []) if s.get("delay_seconds") is not None] if swap else []
    return round(max(delays) * 1000.0, 1) if delays else None


def _upper_bound_only(swap: Any) -> bool:
    """No probe met the source after the flip: the delay measured is the first probe's own start, a bound."""
    settles = (swap.settle or []) if swap else []
    return bool(settles) and all(s.get("source_served_until") is None for s in settles)


def settle_marks(swap: Any) -> list[tuple[str, str, float]]:
    """Timeline marks of a swap's post-flip check: when each floating IP's new connections reached the clone,
    labelled with how long after the API answered (``<=`` where no probe met the source: an upper bound)."""
    marks = []
    for settle in (swap.settle or []) if swap else []:
        if settle.get("clone_served_at") is None:
            continue
        delay = settle.get("delay_seconds")
        bound = "<=" if settle.get("source_served_until") is None else ""  # no probe met the source: a bound
        label = "" if delay is None else f"{bound}+{delay:.2f} s"
        marks.append(("clone served", label, float(settle["clone_served_at"])))
    return marks


def run_demo(
    state_dir: str | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
    keep: bool = False,
    boot_seconds: float = 3.0,
    rate: float = 200.0,
    long_lived: int = 5,
    stream_seconds: float = 15.0,
    timeline: bool = True,
) -> dict[str, Any]:
    """The whole demo; returns {"results": [...], "report": path, "timeline": path}. The cloud is taken down
    unless ``keep``. Without ``timeline`` (no matplotlib) it writes no PNG and "timeline" is None."""
    root = Path(state_dir) if state_dir else default_dir()
    root.mkdir(parents=True, exist_ok=True)
    cloud = LocalCloud(str(root / "cloud"))
    cloud.down()
    cloud.up(boot_seconds=boot_seconds)
    probe = {"rate_per_fip": rate, "long_lived_per_fip": long_lived, "stream_seconds": stream_seconds}
    try:
        twins = {s: [(f"{s}-{name}", topo, proto, port) for name, topo, proto, port in SHAPES] for s in STRATEGIES}
        groups = {s: seed(cloud, names) for s, names in twins.items()}
        bad_group = seed(cloud, [BAD_IMAGE])  # on the old image, like every other source
        image = cloud.publish_image("amphora-2026-11", ["amphora"], template="v2")
        runs = [(strategy, groups[strategy], "new-image") for strategy in STRATEGIES]
        runs.append(("fip-swap", bad_group, "bad-image"))
        seen = _run_scenarios(
            cloud, root, runs, on_event=on_event, rate=rate, long_lived=long_lived, stream_seconds=stream_seconds
        )
        png = None
        if timeline:
            png = write_timeline(
                root / "reports" / "demo-timeline.png",
                seen.panels,
                seen.attempts,
                seen.streams,
                title=f"lbswap demo: fip-swap next to failover (rebuild window modeled as {boot_seconds:g} s)",
            )
        summary = _write_summary(root, cloud.spec(), image.name, boot_seconds, probe, seen, png)
    finally:
        if not keep:
            cloud.down()
    timeline_png = None if png is None else str(png)
    return {
        "results": seen.rows,
        "report": str(summary),
        "timeline": timeline_png,
        "rebuild_window_seconds": boot_seconds,
    }


@dataclass
class _Seen:
    """What the demo's runs gathered: a result row per load balancer, a timeline panel each, every attempt
    and long-lived stream the probe saw, and each campaign's report."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    panels: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    streams: list[LongLived] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


def _run_scenarios(
    cloud: LocalCloud,
    root: Path,
    runs: list[tuple[str, dict[str, dict[str, Any]], str]],
    *,
    on_event: Callable[[Event], None] | None,
    rate: float,
    long_lived: int,
    stream_seconds: float,
) -> _Seen:
    """Each (strategy, load balancers, scenario) upgraded under load in turn, in one journal."""
    journal_file = root / "journal.sqlite"
    journal_file.unlink(missing_ok=True)
    journal = Journal(journal_file)
    seen = _Seen()
    try:
        for strategy, group, scenario in runs:
            if scenario == "bad-image":  # newer still, and broken: every new amphora answers 503
                cloud.publish_image("amphora-2026-11-bad", ["amphora"], template="v2", fault=BAD_FAULT)
            run = upgrade_under_load(
                cloud,
                journal,
                group,
                strategy,
                root / (strategy if scenario == "new-image" else scenario),
                rate=rate,
                long_lived=long_lived,
                stream_seconds=stream_seconds,
                on_event=on_event,
            )
            peers = {a["address"]: a["image"] for a in cloud.amphora_log()}
            seen.rows += _rows(run, group, strategy, peers, scenario)
            seen.reports.append(str(write_report(run["result"], root / "reports")))
            seen.attempts += with_images(run["probe"].attempts, peers)
            seen.streams += run["probe"].long_lived
            swaps = {s.name: s for s in run["result"].swaps}
            for name, info in group.items():
                what = strategy if scenario == "new-image" else f"{strategy} to an image answering 503"
                seen.panels.append(
                    {
                        "target": name,
                        "title": f"{name} ({info['topology']}, {info['protocol']}): {what}",
                        "t0": run["t0"],
                        "marks": sorted(run["marks"][name] + settle_marks(swaps.get(name)), key=lambda m: m[2]),
                    }
                )
    finally:
        journal.close()
    return seen


def _write_summary(
    root: Path,
    backend: str,
    new_image: str,
    boot_seconds: float,
    probe: dict[str, Any],
    seen: _Seen,
    png: Path | None,
) -> Path:
    """reports/demo.json (the numbers and how they were taken) and reports/demo-attempts.json (every attempt)."""
    report = {
        "backend": backend,
        "new_image": new_image,
        "rebuild_window_seconds": boot_seconds,
        "bad_image": f"amphora-2026-11-bad (fault {BAD_FAULT}): the bad-image row must end rolled_back by verify",
        "note": (
            f"Failover outages include a modeled rebuild window of {boot_seconds:g} s standing for Octavia's VM "
            "boot, port plugging and listener configuration; in a real cloud that window takes tens of seconds. "
            "The lab floor (namespaces, no VM) is not Octavia's outage."
        ),
        "api_to_clone": (
            "api_to_clone_ms: per fip-swap row, how long after the API answered the flip a new connection through "
            "the floating IP reached the clone (the slowest of its floating IPs; the post-flip check probes from "
            "the client namespace and tells the clone by the address the member saw). The drain starts after it."
        ),
        "probe": probe,
        "options": asdict(LAB_OPTIONS),
        "results": seen.rows,
        "timeline_png": None if png is None else str(png),
        "campaign_reports": seen.reports,
    }
    summary = root / "reports" / "demo.json"
    summary.write_text(json.dumps(report, indent=2))
    (root / "reports" / "demo-attempts.json").write_text(
        json.dumps({"attempts": [asdict(a) for a in seen.attempts], "long_lived": [asdict(s) for s in seen.streams]})
    )
    return summary
