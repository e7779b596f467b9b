"""The handlers of the simulator's own commands (fake.py): ``fake seed``, ``fake publish-image``, ``fake faults``.
They change only the simulator's state file."""

from __future__ import annotations

import argparse
from pathlib import Path

from lbswap import model
from lbswap.cli import emit
from lbswap.cli.snapshot_file import read_snapshot
from lbswap.errors import ConfigError


def cmd_fake_seed(args: argparse.Namespace) -> int:
    from lbswap.clouds import fake

    graphs = None if args.sample else read_snapshot(args.from_snapshot)
    if Path(args.path).exists() and not args.force:
        raise ConfigError(
            f"{args.path} already exists and a campaign's journal may refer to the cloud in it: "
            "give --force to replace it, or another PATH"
        )
    if graphs is None:
        ids = fake.seed_sample(args.path, args.sample, seed=args.seed)
    else:
        ids = fake.seed_from_snapshot(args.path, graphs)
    emit(
        {"path": args.path, "load_balancers": ids},
        args.format,
        table=lambda d: print(f"seeded {len(d['load_balancers'])} load balancer(s) in {d['path']}"),
    )
    return 0


def cmd_fake_publish_image(args: argparse.Namespace) -> int:
    from lbswap.clouds import fake

    cloud = fake.FakeCloud(args.path)
    image = cloud.publish_image(
        args.name, tuple(args.tag or ["amphora"]), fault=args.fault, fault_after=args.fault_after
    )
    cloud.close()
    emit(model.to_json(image), args.format, table=lambda d: print(f"published image {d['id']} ({d['name']})"))
    return 0


def cmd_fake_faults(args: argparse.Namespace) -> int:
    from lbswap.clouds import fake

    if args.clear:
        fake.clear_faults(args.path)
    else:
        fake.set_faults(
            args.path,
            latency=args.latency,
            fail_at=args.fail_at,
            fail_kind=args.fail_kind,
            fail_probability=args.fail_probability,
            crash_at=args.crash_at,
            drain_seconds=args.drain_seconds,
            read_error_probability=args.fail_reads,
            fip_lag=args.fip_lag,
            subnet_free=dict(args.subnet_free),
        )
    return 0
