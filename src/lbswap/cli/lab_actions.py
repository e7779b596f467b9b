"""The handlers of the lab commands on this host (lab.py): ``local`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from lbswap import model
from lbswap.cli import backend_spec, emit
from lbswap.cli.progress import ProgressView


def cmd_local(args: argparse.Namespace) -> int:
    from lbswap.clouds.local import LocalCloud

    spec = backend_spec(args)
    cloud = LocalCloud(spec.partition(":")[2] or None if spec.startswith("local") else None)
    if args.action == "up":
        result = cloud.up(boot_seconds=args.boot_seconds)
        if args.flush_conntrack:
            cloud.configure(flush_conntrack=True)
        if args.sample:
            from lbswap.lab.shapes import sample_shapes, seed

            existing = {lb.name for lb in cloud.list_load_balancers()}
            seed(cloud, [shape for shape in sample_shapes(args.sample) if shape[0] not in existing])
            result = cloud.status()
    elif args.action == "publish-image":
        image = cloud.publish_image(
            args.image or args.name,
            args.tag or ["amphora"],
            template=args.template,
            fault=args.fault,
            fault_after=args.fault_after,
        )
        result = model.to_json(image)
    else:
        result = getattr(cloud, args.action)()
    emit(result, args.format)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Without matplotlib (the ``lab`` extra) the demo says so in one line and runs without the PNG timeline."""
    from lbswap.lab import timeline
    from lbswap.lab.demo import run_demo

    png = timeline.available()
    if not png:
        print(f"lbswap: warning: no PNG timeline without matplotlib: {timeline.INSTALL} adds it", file=sys.stderr)
    with ProgressView([], enabled=args.format == "table") as view:
        result = run_demo(
            args.state_dir,
            on_event=view,
            keep=args.keep,
            boot_seconds=args.boot_seconds,
            rate=args.rate,
            timeline=png,
        )
    emit(result, args.format, table=_demo_table)
    return 0


def _pair(rows: dict[str, dict[str, Any]], fmt: Callable[[dict[str, Any]], str]) -> list[str]:
    return [fmt(rows[s]) if s in rows else "-" for s in ("fip-swap", "failover")]


def _demo_rows(results: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per shape: the fip-swap twin next to the failover twin."""
    shapes: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        shape = r["lb"].removeprefix(r["strategy"] + "-")
        shapes.setdefault(shape, {})[r["strategy"]] = r
    rows = []
    for shape, by_strategy in shapes.items():
        first = next(iter(by_strategy.values()))
        rows.append(
            (
                shape,
                first["topology"],
                *_pair(by_strategy, lambda r: f"{r['failed']}/{r['attempts']}"),
                *_pair(by_strategy, lambda r: f"{r['longest_gap_ms']:.0f}"),
                *_pair(by_strategy, lambda r: f"{r['long_lived_cut']}/{r['long_lived_total']}"),
                *_pair(by_strategy, lambda r: f"{r['upgrade_seconds']}"),
                _api_to_clone(by_strategy.get("fip-swap")),
            )
        )
    return rows


def _api_to_clone(row: dict[str, Any] | None) -> str:
    """fip-swap: how long after the API answered the flip the clone served new connections (or why unknown)."""
    if row is None:
        return "-"
    if row.get("api_to_clone_ms") is not None:  # "<=": no probe met the source, the probe's own start bounds it
        return ("<=" if row.get("api_to_clone_upper_bound") else "") + f"{row['api_to_clone_ms']:.0f}"
    return ", ".join(row.get("settle") or []) or "-"


def _demo_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(
        title="fip-swap next to failover: twin load balancers, same probe",
        caption="failed: new connections failed/attempted; gap: longest time without a successful new "
        "connection; cut: long-lived streams cut/opened; seconds: time to upgrade; API->clone: how long after "
        "the API answered the flip new connections reached the clone (the drain starts after it; <=: no probe "
        "met the source, so the probe's own start time bounds it)",
    )
    grid.add_column("load balancer", no_wrap=True)
    grid.add_column("topology", no_wrap=True)
    for what in ("failed", "gap ms", "cut", "seconds"):
        grid.add_column(f"{what}\nfip-swap", justify="right", no_wrap=True)
        grid.add_column(f"{what}\nfailover", justify="right", no_wrap=True)
    grid.add_column("API->clone ms\nfip-swap", justify="right", no_wrap=True)
    for row in _demo_rows(data["results"]):
        grid.add_row(*row)
    Console(width=max(132, Console().width)).print(grid)
    print(
        f"failover includes a modeled rebuild window of {data['rebuild_window_seconds']:g} s "
        "(stands for Octavia's VM boot and plugging; real clouds take longer)"
    )
    for r in data["results"]:
        if r.get("scenario") == "bad-image":  # the fip-swap to a broken image: caught before the flip?
            print(f"bad image: {r['lb']} {r['state']} (verify {r['verify']}), {r['failed']} failed new connections")
    from lbswap.lab.timeline import INSTALL

    png = data["timeline"] or f"none ({INSTALL} for the PNG)"
    print(f"report: {data['report']}\ntimeline: {png}")
