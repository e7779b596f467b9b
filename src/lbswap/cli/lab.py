"""Lab commands on this host: the local cloud and the demo."""

from __future__ import annotations

import argparse

from lbswap.cli import lab_actions
from lbswap.cli.base import DocumentCommand
from lbswap.cli.options import add_fault_options, non_negative_float, non_negative_int


class Local(DocumentCommand):
    """Manage the local cloud (root): load balancers made of network namespaces, haproxy and nftables.

    up builds it (and --sample N load balancers), down removes everything it made, status shows it,
    publish-image adds a newer amphora image. Changes this host, not any OpenStack cloud.
    """

    name = "local"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("action", choices=("up", "down", "status", "publish-image"))
        parser.add_argument(
            "--sample", type=non_negative_int, default=0, metavar="N", help="up: also create N load balancers"
        )
        parser.add_argument(
            "--boot-seconds",
            type=non_negative_float,
            metavar="SECONDS",
            help="up: the modeled amphora boot/plug window of creates and failovers (default 3)",
        )
        parser.add_argument("--flush-conntrack", action="store_true", help="up: flush conntrack when a FIP moves")
        parser.add_argument("--name", default="amphora-new", help="publish-image: the image name")
        parser.add_argument("--tag", action="append", default=[], help="publish-image: tags (default amphora)")
        parser.add_argument("--template", default="v2", choices=("v1", "v2"), help="publish-image: haproxy template")
        parser.add_argument("image", nargs="?", help="publish-image: the image name (as --name)")
        add_fault_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return lab_actions.cmd_local(parsed_args)


class Demo(DocumentCommand):
    """Bring up a local cloud and upgrade it under load: fip-swap next to failover, same probe.

    Needs root; changes this host (namespaces, haproxy, nftables), never an OpenStack cloud. Measures failed
    new connections, the longest gap and cut long-lived streams per strategy, and writes a report and a
    timeline. Tears the local cloud down afterwards unless --keep.
    """

    name = "demo"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--state-dir", metavar="DIR")
        parser.add_argument("--keep", action="store_true", help="leave the local cloud up afterwards")
        parser.add_argument(
            "--boot-seconds",
            type=non_negative_float,
            default=3.0,
            metavar="SECONDS",
            help="the modeled amphora rebuild window (default 3; Octavia's is tens of seconds)",
        )
        parser.add_argument("--rate", type=non_negative_float, default=200.0, help="new connections/s per floating IP")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return lab_actions.cmd_demo(parsed_args)
