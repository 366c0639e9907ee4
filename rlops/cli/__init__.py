"""The `rlops` command line.

Each subcommand lives in its own module of this package and exposes
`register(subparsers)`; the module list below is the whole command set. Heavy
imports (Ray, kopf, kubernetes) happen inside the subcommand, never at start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = [
    "run",
    "train",
    "validate",
    "render",
    "crds",
    "operator",
    "slurm_bridge",
    "status",
    "logs",
    "control",
    "report",
    "docs",
    "completion",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlops",
        description="Declarative RL experiments and sweeps on Kubernetes, SLURM or this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"rlops.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"rlops.cli.{name}":
                continue  # Not built yet.
            raise
        module.register(sub)
    return parser


def run_parser(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Answer shell completion, else parse `argv` and run the chosen subcommand."""
    from rlops.cli.completion import autocomplete

    autocomplete(parser)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run_parser(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
