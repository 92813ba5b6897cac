"""The `kvplan` command line: parse, call planner, print. No formulas here.

Every command prints a table by default and JSON with --json. User errors print one line
to stderr and exit 2; --debug shows the traceback instead. Each command group lives in its
own module with a ``register(subparsers)`` function; this one assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from planner.cli import models, plan, search, simulate
from planner.cli.common import EXIT_USER_ERROR
from planner.errors import KvplanError

COMMAND_MODULES = (models, plan, search, simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvplan", description="KV-cache capacity planner and serving simulator"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except KvplanError as err:
        if args.debug:
            raise
        print(f"kvplan: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
