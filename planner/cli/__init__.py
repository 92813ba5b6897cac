"""The `kvplan` command line (see planner.cli.main)."""

from planner.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
