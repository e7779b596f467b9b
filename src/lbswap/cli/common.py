"""What the command handlers of several families share: the cloud a command opens and the load balancers it
selects (by id, name, project or tag, narrowed by why to rotate)."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lbswap import model
from lbswap.cli import backend_spec
from lbswap.clouds import Cloud, open_cloud
from lbswap.errors import BadInput

#: the exit code of a command a signal stopped (128 + the signal's number, as a shell reports it)
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@contextmanager
def handling_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` answers SIGINT and SIGTERM while the block runs; the handlers before it come back after."""
    previous = {sig: signal.signal(sig, handler) for sig in SIGNAL_EXIT}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def cloud_from(args: argparse.Namespace) -> Iterator[Cloud]:
    cloud = open_cloud(backend_spec(args))
    try:
        yield cloud
    finally:
        cloud.close()


def criteria(args: argparse.Namespace) -> Any:
    from lbswap.rotation import Criteria

    return Criteria(
        stale_image=args.stale_image,
        older_than_days=args.older_than,
        cert_expiring_within_days=args.cert_expiring_within,
        force=args.force,
        repair=args.repair,
    )


def _has_selection(args: argparse.Namespace) -> bool:
    return bool(args.lb or args.all or args.project or args.tag or args.provider or criteria(args).any)


def select(cloud: Cloud, args: argparse.Namespace, *, default_all: bool) -> list[model.LBSummary]:
    from lbswap.plan import resolve_selection

    if not _has_selection(args) and not default_all:
        raise BadInput(
            "select load balancers with --lb ID_OR_NAME, --all, --tag, --project, or why to rotate: --stale-image, "
            "--older-than DAYS, --cert-expiring-within DAYS, --force, --repair"
        )
    everything = not args.lb and not args.tag and not args.project
    chosen = resolve_selection(
        cloud, names_or_ids=list(args.lb), all_=args.all or everything, project_id=args.project, tag=args.tag
    )
    if args.provider:
        chosen = [lb for lb in chosen if lb.provider == args.provider]
    wanted = criteria(args)
    if wanted.any:  # why rotate: any one reason selects a load balancer
        from lbswap.rotation import ImageCatalog, reasons

        catalog = ImageCatalog(cloud, args.image_tag, args.image_owner)
        now = cloud.clock.now()
        kept = []
        for lb in chosen:
            newest = catalog.newest(lb.flavor_id)
            amphorae = cloud.list_amphorae(lb.id) if lb.provider == "amphora" else []
            if reasons(lb, amphorae, newest.id if newest else None, wanted, now):
                kept.append(lb)
        chosen = kept
    return chosen
