"""`kubectl rlops ...`: the kubectl plugin (the `kubectl-rlops` entry point).

kubectl finds `kubectl-rlops` on PATH and runs it with the rest of the command line
and its environment (KUBECONFIG). The plugin is the rlops command line restricted to
what acts on a cluster: status, logs (`-f`), stop, pause, resume, retry and report,
always reading the cluster (never a local run directory).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand -> the rlops.cli module that registers it.
PLUGIN_COMMANDS = {
    "status": "status",
    "logs": "logs",
    "stop": "control",
    "pause": "control",
    "resume": "control",
    "retry": "control",
    "report": "report",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl rlops",
        description="rlops Sweeps and RLExperiments in the current kubectl context.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(PLUGIN_COMMANDS.values()):
        importlib.import_module(f"rlops.cli.{module}").register(sub)
    assert set(sub.choices) == set(PLUGIN_COMMANDS), sorted(sub.choices)
    parser.set_defaults(cluster=True)  # Read by rlops.cli.status.use_cluster.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rlops.cli import run_parser

    return run_parser(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
