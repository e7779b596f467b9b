"""Rehearsal commands on the file-backed simulator: fake seed, fake faults, fake publish-image.

They change only the simulator's state file, never a cloud.
"""

from __future__ import annotations

import argparse

from lbswap.cli import fake_actions
from lbswap.cli.base import DocumentCommand
from lbswap.cli.options import add_fault_options, non_negative_float, positive_int, probability, subnet_free


class FakeSeed(DocumentCommand):
    """Create a simulated cloud in PATH: N sample load balancers, or a copy of a snapshot of yours.

    Rehearse a campaign on it with --backend fake:PATH. Writes PATH (an existing one only with --force);
    changes no cloud.
    """

    name = "fake seed"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("path", metavar="PATH")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--sample", type=positive_int, metavar="N", help="N varied sample load balancers")
        source.add_argument("--from-snapshot", metavar="FILE", help="the output of `lbswap snapshot`")
        parser.add_argument("--seed", type=int, default=0, help="the random seed of the sample (default 0)")
        parser.add_argument("--force", action="store_true", help="replace the simulated cloud already at PATH")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return fake_actions.cmd_fake_seed(parsed_args)


class FakeFaults(DocumentCommand):
    """Inject faults into the simulated cloud in PATH: latency, failing or crashing calls, slow drains.

    --clear removes every fault. Changes only PATH.
    """

    name = "fake faults"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("path", metavar="PATH")
        parser.add_argument(
            "--latency", type=non_negative_float, metavar="SECONDS", help="how long a PENDING_* state lasts"
        )
        parser.add_argument("--fail-at", type=positive_int, metavar="N", help="API call N (counting every call) fails")
        parser.add_argument(
            "--fail-kind",
            choices=("error", "timeout", "error-status"),
            default="error",
            help="a 500, a timeout, or the load balancer ends in ERROR (default error)",
        )
        parser.add_argument("--fail-probability", type=probability, metavar="P", help="each call fails with P")
        parser.add_argument(
            "--crash-at", type=positive_int, metavar="N", help="exit 137 right after the Nth side-effecting call"
        )
        parser.add_argument(
            "--drain-seconds", type=non_negative_float, metavar="SECONDS", help="connections drain to 0 over this"
        )
        parser.add_argument(
            "--fail-reads", type=probability, metavar="P", help="each read call fails with a 503 with probability P"
        )
        parser.add_argument(
            "--fip-lag",
            type=non_negative_float,
            metavar="SECONDS",
            help="a floating IP's data plane follows a move this long after the API answered (as Neutron's L3 agent)",
        )
        parser.add_argument(
            "--subnet-free",
            type=subnet_free,
            action="append",
            default=[],
            metavar="SUBNET_ID=N",
            help="from now on, N addresses are left on this subnet (repeatable)",
        )
        parser.add_argument("--clear", action="store_true", help="remove every fault")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return fake_actions.cmd_fake_faults(parsed_args)


class FakePublishImage(DocumentCommand):
    """Publish a newer amphora image in the simulated cloud in PATH, so its load balancers become stale.

    Changes only PATH.
    """

    name = "fake publish-image"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("path", metavar="PATH")
        parser.add_argument("--name", default="amphora-new", help="the image name (default amphora-new)")
        parser.add_argument("--tag", action="append", default=[], help="repeatable (default amphora)")
        add_fault_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return fake_actions.cmd_fake_publish_image(parsed_args)
