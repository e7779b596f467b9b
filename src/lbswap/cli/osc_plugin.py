"""lbswap as an OpenStack-client plugin: ``openstack loadbalancer upgrade inventory|plan|run|...``.

The ``openstack`` program (python-openstackclient, the ``[osc]`` extra) finds this module through the
``openstack.cli.extension`` entry point ``load_balancer_upgrade`` and the commands through the entry point
group ``openstack.load_balancer_upgrade.v1``: the same cliff classes as ``lbswap``. The cloud is the one the
``openstack`` options name: ``--os-cloud`` or ``OS_CLOUD`` (clouds.yaml), else the ``OS_*`` variables, which
lbswap's openstack backend reads through openstacksdk exactly as the client does. The journal is
``--journal`` or lbswap's default. Nothing here imports python-openstackclient: ``lbswap`` works without it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from typing import Any

from cliff.command import Command

from lbswap.cli.base import HelpFormatter, Parser

#: the plugin interface of python-openstackclient (see its "Plugins" documentation)
API_NAME = "load_balancer_upgrade"
DEFAULT_API_VERSION = "1"
API_VERSION_OPTION = "os_load_balancer_upgrade_api_version"
API_VERSIONS = {"1": "lbswap.cli.osc_plugin.Client"}


class Client:
    """What ``client_manager.load_balancer_upgrade`` gives: the session's cloud name (lbswap opens its own
    connection through its openstack backend, so that retries, timeouts and the journal work as in ``lbswap``)."""

    def __init__(self, cloud: str | None) -> None:
        self.cloud = cloud


def make_client(instance: Any) -> Client:
    """Called by the openstack client when a command asks for ``client_manager.load_balancer_upgrade``."""
    options = getattr(instance, "_cli_options", None)
    return Client(getattr(options, "name", None))


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The global option the plugin interface expects (one API version: 1)."""
    parser.add_argument(
        "--os-load-balancer-upgrade-api-version",
        metavar="<load-balancer-upgrade-api-version>",
        default=DEFAULT_API_VERSION,
        help=f"lbswap command set version, default={DEFAULT_API_VERSION}",
    )
    return parser


#: the plugin's commands (the entry points of group openstack.load_balancer_upgrade.v1), for the overview
COMMANDS = {
    "inventory": "lbswap.cli.inventory:Inventory",
    "snapshot": "lbswap.cli.inventory:Snapshot",
    "plan": "lbswap.cli.campaign:Plan",
    "run": "lbswap.cli.campaign:Run",
    "status": "lbswap.cli.campaign:Status",
    "resume": "lbswap.cli.campaign:Resume",
    "rollback": "lbswap.cli.campaign:Rollback",
    "finalize": "lbswap.cli.campaign:Finalize",
    "report": "lbswap.cli.campaign:Report",
    "recover": "lbswap.cli.campaign:Recover",
    "conductor": "lbswap.cli.conductor:Conductor",
}


class _OverviewFormatter(HelpFormatter):
    """Paragraphs filled, the command list kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        prose, _, listing = text.partition("\n\ncommands")
        return super()._fill_text(prose, width, indent) + ("\n\ncommands" + listing if listing else "")


class Overview(Command):
    """`openstack loadbalancer upgrade` (and its --help): what lbswap does and what each command changes."""

    auth_required = False

    def get_description(self) -> str:
        from lbswap.cli.app import SUMMARY

        lines = []
        for name, target in COMMANDS.items():
            module, _, cls = target.partition(":")
            summary = (inspect.getdoc(getattr(importlib.import_module(module), cls)) or "").splitlines()[0]
            lines.append(f"  {name:<10} {summary}")
        prose = (
            f"{SUMMARY}\n\nThe cloud is the one the openstack options name (--os-cloud, OS_CLOUD or the OS_* "
            "variables). Each command takes --journal PATH (default $XDG_STATE_HOME/lbswap/journal.sqlite) and "
            "--backend fake:PATH to rehearse on the simulator."
        )
        return f"{prose}\n\ncommands (`openstack help loadbalancer upgrade COMMAND` for each):\n" + "\n".join(lines)

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        return Parser(prog=prog_name, description=self.get_description(), formatter_class=_OverviewFormatter)

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        self.get_parser("openstack loadbalancer upgrade").print_help(self.app.stdout)
        return 0
