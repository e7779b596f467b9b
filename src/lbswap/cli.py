"""Command line: parse, call the core, render. The core never prints."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--version":
        from lbswap import __version__

        print(__version__)
        return 0
    print("lbswap: the command line is not built yet", file=sys.stderr)
    return 2
