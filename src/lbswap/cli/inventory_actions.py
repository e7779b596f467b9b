"""The handlers of the read-only commands (inventory.py): ``inventory`` and ``snapshot``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lbswap import model
from lbswap.cli import Output, _rich_table, columns, emit
from lbswap.cli.common import cloud_from, criteria, select
from lbswap.cli.snapshot_file import snapshot_target, write_whole
from lbswap.clouds import Cloud
from lbswap.textsafe import shown

if TYPE_CHECKING:
    from lbswap.rotation import ImageCatalog

_STALE = {True: "yes", False: "no", None: "unknown"}


def cmd_inventory(args: argparse.Namespace) -> Output:
    from lbswap.rotation import ImageCatalog

    with cloud_from(args) as cloud:
        catalog = ImageCatalog(cloud, args.image_tag, args.image_owner)
        now = cloud.clock.now()
        rows = [_inventory_row(cloud, catalog, now, lb, args) for lb in select(cloud, args, default_all=True)]
    return Output(rows, _inventory_table, columns.INVENTORY, [_inventory_flat(r) for r in rows])


def _inventory_row(
    cloud: Cloud, catalog: ImageCatalog, now: float, summary: model.LBSummary, args: argparse.Namespace
) -> dict[str, Any]:
    """One load balancer as ``-f json|yaml`` give it: its floating IPs, amphorae and why to rotate it."""
    from lbswap.rotation import reasons

    graph = cloud.read_graph(summary.id)
    tag = catalog.tag_for(graph.flavor_id)
    images = {i.id: i for i in catalog.images(tag)}
    newest = catalog.newest(graph.flavor_id)
    newest_id = newest.id if newest else None
    return {
        "id": graph.id,
        "name": graph.name,
        "provisioning_status": graph.provisioning_status,
        "operating_status": graph.operating_status,
        "topology": graph.topology,
        "provider": graph.provider,
        "vip_address": graph.vip_address,
        "vip_port_id": graph.vip_port_id,
        "floating_ips": [
            {"id": f.id, "floating_ip_address": f.floating_ip_address, "port_id": f.port_id} for f in graph.floating_ips
        ],
        "tags": list(graph.tags),
        "image_tag": tag,
        "amphorae": [_amphora_row(a, images, now) for a in graph.amphorae],
        "newest_image_id": newest_id,
        "stale_image": _is_stale(graph.amphorae, newest_id),
        "rotate_because": reasons(summary, graph.amphorae, newest_id, criteria(args), now),
    }


def _inventory_table(data: list[dict[str, Any]]) -> None:
    _rich_table(
        "load balancers",
        columns.INVENTORY_TABLE,
        [
            (
                r["id"],
                r["name"],
                f"{r['provisioning_status']}/{r['operating_status']}",
                r["topology"],
                r["vip_address"],
                " ".join(f["floating_ip_address"] for f in r["floating_ips"]) or "-",
                "\n".join(_amphora_cell(a) for a in r["amphorae"]) or "-",
                _STALE[r["stale_image"]],
            )
            for r in data
        ],
    )


def _inventory_flat(r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["id"],
        r["name"],
        r["provisioning_status"],
        r["operating_status"],
        r["topology"],
        r["provider"],
        r["vip_address"],
        " ".join(f["floating_ip_address"] for f in r["floating_ips"]),
        " ".join(f"{a['role']}:{a['image_name'] or a['image_id']}" for a in r["amphorae"]),
        _STALE[r["stale_image"]],
        "; ".join(r["rotate_because"]),
    )


def _is_stale(amphorae: Sequence[model.Amphora], newest: str | None) -> bool | None:
    if newest is None or not amphorae:
        return None
    return any(a.image_id != newest for a in amphorae)


def _amphora_row(amphora: Any, images: dict[str, Any], now: float) -> dict[str, Any]:
    from lbswap.rotation import age_days, cert_days_left, epoch

    image = images.get(amphora.image_id)
    image_age = None
    if image is not None and image.created_at:
        created = epoch(image.created_at)
        image_age = None if created is None else round((now - created) / 86400, 1)
    amphora_age, cert_left = age_days(amphora, now), cert_days_left(amphora, now)
    return {
        "id": amphora.id,
        "role": amphora.role,
        "image_id": amphora.image_id,
        "image_name": image.name if image else None,
        "image_age_days": image_age,
        "age_days": None if amphora_age is None else round(amphora_age, 1),
        "cert_expires_in_days": None if cert_left is None else round(cert_left, 1),
    }


def _amphora_cell(a: dict[str, Any]) -> str:
    def days(value: float | None) -> str:
        return "?" if value is None else f"{value:.0f}d"

    image = a["image_name"] or a["image_id"]
    return f"{a['role']}: {image} ({days(a['image_age_days'])} old), up {days(a['age_days'])}, " + (
        f"cert {days(a['cert_expires_in_days'])}"
    )


def cmd_snapshot(args: argparse.Namespace) -> int:
    target = snapshot_target(args.output) if args.output else None  # before reading a whole fleet
    with cloud_from(args) as cloud:
        graphs = [model.to_json(cloud.read_graph(lb.id)) for lb in select(cloud, args, default_all=True)]
    text = json.dumps({"lbswap_snapshot": 1, "load_balancers": graphs}, indent=2) + "\n"
    if target is None:
        sys.stdout.write(text)
        return 0
    write_whole(target, text, what="the snapshot")
    print(f"wrote {len(graphs)} load balancer graph(s) to {shown(args.output)}", file=sys.stderr)
    if args.format != "table":  # a JSON or YAML reader still gets its one document
        emit({"output": str(target), "load_balancers": len(graphs)}, args.format)
    return 0
