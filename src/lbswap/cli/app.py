"""The ``lbswap`` program: a cliff App over the command classes of campaign, inventory, lab and fake.

Global options (--os-cloud, --backend, --journal, -v, -f) are accepted before or after the command, as the
README's command lines write them: the App's parser reads them anywhere in argv and hands ``-f`` on to the
command. Unlike cliff's default App it has no interactive mode and lets errors reach
:func:`lbswap.cli.guarded` (one line, exit code); ``lbswap CMD --help`` shows the command's own help.
"""

from __future__ import annotations

import argparse
from typing import Any

from cliff import help
from cliff.app import App
from cliff.command import Command
from cliff.commandmanager import CommandManager

from lbswap import __version__, cli
from lbswap.cli import campaign, conductor, fake, inventory, lab
from lbswap.cli.base import EXIT_CODES, HelpFormatter, Parser
from lbswap.errors import BadInput

COMMANDS: tuple[type[Command], ...] = (
    inventory.Inventory,
    inventory.Snapshot,
    campaign.Plan,
    campaign.Run,
    campaign.Status,
    campaign.Resume,
    campaign.Rollback,
    campaign.Finalize,
    campaign.Report,
    campaign.Recover,
    conductor.Conductor,
    fake.FakeSeed,
    fake.FakeFaults,
    fake.FakePublishImage,
    lab.Local,
    lab.Demo,
)

SUMMARY = """\
Upgrade Octavia load balancers blue/green: clone each one on the new amphora image (or flavor, zone,
provider), wait until the clone is ready, move the floating IPs to it atomically, drain and retire the
source. Where no floating IP can move, lbswap says how much downtime the fallback costs before it changes
anything. `plan` changes nothing; `run`, `resume`, `rollback`, `finalize` and `recover` change the cloud and
journal every step, so `resume` finishes or rolls back after a crash."""

DESCRIPTION = f"""{SUMMARY}

The cloud: --os-cloud NAME (clouds.yaml) or OS_CLOUD, or --backend fake:PATH | local[:DIR] |
openstack[:CLOUD] (LBSWAP_BACKEND). The journal: --journal PATH (default
$XDG_STATE_HOME/lbswap/journal.sqlite), or mysql+pymysql://USER@HOST[:PORT]/DB or
postgresql+psycopg://USER@HOST[:PORT]/DB shared by conductors on several hosts. Global options go before or
after the command."""


class LbswapApp(App):
    is_lbswap = True  # the command classes read the cloud and journal from these global options

    def __init__(self) -> None:
        manager = CommandManager("lbswap.cli", convert_underscores=False)
        for command in COMMANDS:
            manager.add_command(command.name, command)  # type: ignore[attr-defined]
        super().__init__(description=DESCRIPTION, version=__version__, command_manager=manager, deferred_help=True)

    def build_option_parser(
        self, description: str | None, version: str | None, argparse_kwargs: dict[str, Any] | None = None
    ) -> argparse.ArgumentParser:
        parser = Parser(
            prog="lbswap",
            description=description,
            epilog=EXIT_CODES,
            add_help=False,
            allow_abbrev=False,
            formatter_class=HelpFormatter,
        )
        parser.add_argument("--version", action="version", version=f"lbswap {version}")
        parser.add_argument("-h", "--help", dest="deferred_help", action="store_true", help="show this help")
        group = parser.add_argument_group("cloud and output (before or after the command)")
        group.add_argument("--os-cloud", metavar="NAME", help="cloud in clouds.yaml (env OS_CLOUD)")
        group.add_argument(
            "--backend",
            metavar="SPEC",
            help="fake:PATH | local[:STATE_DIR] | openstack[:CLOUD][?probe-netns=NS] (env LBSWAP_BACKEND; def. local)",
        )
        group.add_argument(
            "--journal",
            metavar="PATH|URL",
            help="campaign journal: a SQLite file, or mysql+pymysql://USER@HOST[:PORT]/DB or "
            "postgresql+psycopg://USER@HOST[:PORT]/DB shared by conductors on several hosts (its password: "
            "LBSWAP_JOURNAL_PASSWORD or --journal-password-file)",
        )
        group.add_argument(
            "--journal-password-file", metavar="FILE", help="the journal's database password, in a file of mode 0600"
        )
        group.add_argument("-f", "--format", choices=cli.FORMATS, help="the output format (default table)")
        group.add_argument("-v", "--verbose", action="store_true", default=False, help="debug logging on stderr")
        return parser

    def run(self, argv: list[str]) -> int:
        """Parse the global options wherever they are, then run one command; errors propagate."""
        self.options, remainder = self.parser.parse_known_args(argv)
        cli.configure_logging(self.options.verbose)
        if not remainder:
            if self.options.deferred_help:
                help.HelpAction([], argparse.SUPPRESS, default=self)(self.parser, self.options, None, None)
            raise BadInput("lbswap: give a command (see --help)")
        if remainder[0].startswith("-"):
            raise BadInput(f"lbswap: unrecognized arguments: {remainder[0]} (see --help)")
        return self.run_subcommand(remainder)

    def run_subcommand(self, argv: list[str]) -> int:
        try:
            factory, name, sub_argv = self.command_manager.find_command(argv)
        except ValueError:
            raise BadInput(self._unknown(argv)) from None
        command = factory(self, self.options, cmd_name=name)
        parser = command.get_parser(f"lbswap {name}")
        if self.options.deferred_help:
            sub_argv = [*sub_argv, "--help"]
        if self.options.format:  # given before the command (or read off it by this App's parser)
            sub_argv = ["--format", self.options.format, *sub_argv]
        return command.run(parser.parse_args(sub_argv))

    def _unknown(self, argv: list[str]) -> str:
        names = sorted(name for name, _ in self.command_manager if name not in ("help", "complete"))
        actions = [n.split(" ", 1)[1] for n in names if n.startswith(argv[0] + " ")]
        if actions:
            return f"lbswap {argv[0]}: give an action: {' | '.join(actions)} (see --help)"
        choices = ", ".join(repr(n) for n in names if " " not in n)
        return f"lbswap: argument COMMAND: invalid choice: {argv[0]!r} (choose from {choices})"
