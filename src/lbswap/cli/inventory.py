"""Read-only commands: inventory and snapshot."""

from __future__ import annotations

import argparse
from typing import Any

from lbswap.cli import inventory_actions
from lbswap.cli.base import DocumentCommand, DocumentLister
from lbswap.cli.options import add_selection


class Inventory(DocumentLister):
    """List load balancers with their status, floating IPs and amphora images. Changes nothing.

    Without a selection every load balancer visible to you. "stale" says whether an amphora runs an image
    older than the newest one tagged for its flavor. -f json|yaml give each load balancer as a document with
    its floating IPs and amphorae; -c/-f value/-f csv one flat row each.
    """

    name = "inventory"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_selection(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        return self.show(inventory_actions.cmd_inventory(parsed_args))


class Snapshot(DocumentCommand):
    """Print the whole graph of the selected load balancers as JSON: a restorable backup. Changes nothing.

    Listeners, pools, members, health monitors, L7 policies, floating IPs and tags, as `lbswap fake seed
    --from-snapshot` reads them. With -o FILE it writes the file whole (0600) or not at all.
    """

    name = "snapshot"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_selection(parser)
        parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        return inventory_actions.cmd_snapshot(parsed_args)
