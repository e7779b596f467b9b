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
from typing import Any

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
