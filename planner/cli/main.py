"""The `kvplan` command line: parse, call planner, print. No formulas here.

Every command prints a table by default and JSON with --json. User errors (a bad flag, a
bad file, a value out of range) print one line to stderr naming the flag or field and exit
2; argparse's own errors are one line too. --debug shows the traceback instead. A bug in
kvplan itself prints one line and exits 1. Each command group lives in its own module with
a ``register(subparsers)`` function; this one assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from planner.cli import calibrate, migrate, models, plan, search, simulate
from planner.cli.common import EXIT_USER_ERROR, OneLineParser, flag_error
from planner.errors import KvplanError

EXIT_INTERNAL_ERROR = 1


def kvplan_version() -> str:
    try:
        return version("kvplan")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


COMMAND_MODULES = (models, plan, search, simulate, calibrate, migrate)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="kvplan", description="KV-cache capacity planner and serving simulator"
    )
    parser.add_argument("--version", action="version", version=f"kvplan {kvplan_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line argument error
        return done.code if isinstance(done.code, int) else EXIT_USER_ERROR
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except KvplanError as err:
        if args.debug:
            raise
        print(f"kvplan: error: {flag_error(err, args)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:  # a bug in kvplan: one line, exit 1 (--debug: traceback)
        if args.debug:
            raise
        first = str(err).splitlines()[0][:300] if str(err) else ""
        print(
            f"kvplan: internal error: {type(err).__name__}: {first} "
            "(a bug in kvplan; run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
