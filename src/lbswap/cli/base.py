"""What every lbswap command class shares, under ``lbswap`` and under the ``openstack`` client.

Two kinds of command:

* :class:`DocumentLister` (a cliff ``Lister``): its output has rows, so cliff's formatters give
  ``-f table|json|yaml|value|csv``, ``-c COLUMN`` and ``--sort-column``. Without ``-c`` and ``--sort-column``,
  ``-f json|yaml`` give the command's nested document (the README's result schema, which the flat rows cannot
  carry: findings, addresses, flips) and ``-f table`` its rich table; with either, cliff renders the flat rows.
* :class:`DocumentCommand`: one document that is no table (a snapshot, a seeded simulator, the local cloud's
  state), with ``-f table|json|yaml``.

Both run through :func:`lbswap.cli.guarded`, so an error is one line on stderr and its exit code also inside
the ``openstack`` client, and a command's exit code (1: a swap failed; 2: the plan blocks) is kept.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from cliff import _argparse
from cliff.command import Command
from cliff.lister import Lister

from lbswap import cli
from lbswap.errors import BadInput
from lbswap.textsafe import shown

EXIT_CODES = """\
exit codes: 0 done; 1 a load balancer failed or was rolled back; 2 bad input or a blocking finding (nothing \
changed); 130/143 interrupted (`lbswap resume` finishes what was under way)"""


class HelpFormatter(_argparse.SmartHelpFormatter):
    """cliff's help formatter, keeping the paragraphs of a description and an epilog apart."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
        return "\n\n".join(super(HelpFormatter, self)._fill_text(p, width, indent) for p in paragraphs)


GLOBALS = """\
global options, before or after the command: --os-cloud NAME, --backend SPEC, --journal PATH|URL, -v (see \
`lbswap --help`)"""


class Parser(_argparse.ArgumentParser):
    """cliff's parser, but a usage error is one line and exit 2 like every other bad input."""

    def error(self, message: str) -> Any:
        raise BadInput(f"{self.prog}: {message} (see --help)")


class _OwnParser(Command):
    """Builds :class:`Parser` where cliff would build its own (it sits between cliff's bases and Command)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = Parser(
            description=self.get_description(),
            epilog=self.get_epilog(),
            prog=prog_name,
            formatter_class=HelpFormatter,
            conflict_handler=self.conflict_handler,
        )
        for hook in self._hooks:
            if hook.obj is not None:
                hook.obj.get_parser(parser)
        return parser

    def get_epilog(self) -> str:
        return f"{EXIT_CODES}\n\n{GLOBALS}" if _is_lbswap(self.app) else EXIT_CODES


class _Settings:
    """The cloud, journal and format a handler reads from ``args``, wherever the command runs."""

    #: the openstack client need not authenticate first: lbswap's openstack backend connects through
    #: openstacksdk with the same cloud configuration (and a rehearsal on --backend fake needs no cloud)
    auth_required = False

    #: the command's name as ``lbswap`` knows it (what handlers read as ``args.command``)
    name: ClassVar[str]
    app: Any

    def add_plugin_options(self, parser: argparse.ArgumentParser) -> None:
        """Under the ``openstack`` client the cloud comes from its own options; lbswap adds its journal."""
        if _is_lbswap(self.app):
            return
        group = parser.add_argument_group("lbswap")
        group.add_argument(
            "--journal",
            metavar="PATH|URL",
            help="campaign journal (SQLite file, or mysql+pymysql://USER@HOST/DB or postgresql+psycopg://USER@HOST/DB)",
        )
        group.add_argument(
            "--journal-password-file", metavar="FILE", help="the journal's database password, in a file of mode 0600"
        )
        group.add_argument(
            "--backend",
            metavar="SPEC",
            help="fake:PATH | local[:STATE_DIR]: rehearse away from the cloud the openstack options name",
        )

    def settings(self, args: argparse.Namespace, fmt: str) -> argparse.Namespace:
        """Set what handlers read; called once per command run (which writes at most one document)."""
        cli._emitted = False
        args.command = self.name
        args.format = fmt
        if _is_lbswap(self.app):
            options = self.app.options
            args.backend, args.os_cloud, args.journal = options.backend, options.os_cloud, options.journal
            args.journal_password_file = options.journal_password_file
            args.verbose = options.verbose
            return args
        # the openstack client: --os-cloud / OS_CLOUD name the cloud (clouds.yaml), else the OS_* variables
        options = getattr(self.app, "options", None)
        cloud = getattr(options, "cloud", None)
        args.os_cloud = None
        if not getattr(args, "backend", None):
            args.backend = f"openstack:{cloud}" if cloud else "openstack"
        args.journal = getattr(args, "journal", None)
        args.journal_password_file = getattr(args, "journal_password_file", None)
        args.verbose = bool(getattr(options, "verbose_level", 1) > 1)
        return args


def _is_lbswap(app: Any) -> bool:
    return bool(getattr(app, "is_lbswap", False))


class DocumentLister(_Settings, Lister, _OwnParser):
    """A command whose output is rows (see the module's docstring for what each format gives)."""

    output: cli.Output

    def show(self, output: cli.Output) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """What ``take_action`` returns: keeps the whole output for :meth:`produce_output`."""
        self.output = output
        return output.columns, output.rows

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        self.add_plugin_options(parser)
        return parser

    def run(self, parsed_args: argparse.Namespace) -> int:
        fmt = parsed_args.formatter
        self.settings(parsed_args, fmt)

        def go() -> int:
            super(DocumentLister, self).run(parsed_args)
            return self.output.exit_code

        return cli.guarded(go, fmt)

    def produce_output(self, parsed_args: argparse.Namespace, column_names: Sequence[str], data: Iterable[Any]) -> int:
        fmt = parsed_args.formatter
        flat = bool(parsed_args.columns or parsed_args.sort_columns) or fmt not in ("table", *cli.DOCUMENT_FORMATS)
        if not flat and (fmt != "table" or self.output.table is not None):
            cli.emit(self.output.document, fmt, table=self.output.table)
            return 0
        unknown = [c for c in parsed_args.columns if self._normalize_column_name(c) not in column_names]
        if unknown:
            raise BadInput(f"no column {unknown[0]!r}: choose from {', '.join(column_names)}")
        if fmt in cli.DOCUMENT_FORMATS:  # the exact strings: the encoders escape them
            cli._emitted = True
            return super().produce_output(parsed_args, column_names, data)
        # table, value, csv: tenant text shown safely (no terminal escapes, one line per row)
        safe = [tuple(shown(v) if isinstance(v, str) else v for v in row) for row in data]
        return super().produce_output(parsed_args, column_names, safe)


class DocumentCommand(_Settings, _OwnParser):
    """A command whose output is one document that is no table: ``-f table|json|yaml``."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        group = parser.add_argument_group("output")
        group.add_argument(
            "-f", "--format", default="table", choices=("table", "json", "yaml"), help="the output format"
        )
        self.add_plugin_options(parser)
        return parser

    def run(self, parsed_args: argparse.Namespace) -> int:
        fmt = parsed_args.format
        self.settings(parsed_args, fmt)
        return cli.guarded(lambda: int(self.take_action(parsed_args) or 0), fmt)

    def render(self, output: cli.Output, fmt: str) -> int:
        cli.emit(output.document, fmt, table=output.table)
        return output.exit_code
