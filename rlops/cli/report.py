"""`rlops report NAME|DIR`: plots and an index.html for a local run's directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report", help="Make report/ (learning curves, objective per parameter, index.html)."
    )
    p.add_argument("target", help="A run directory, or the name of a run under --root.")
    p.add_argument("--root", type=Path, help="Where run directories are (default: ./rlops-runs).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlops.runner.report import ReportError, make_report
    from rlops.runner.session import RunnerSettings

    console = Console(highlight=False, soft_wrap=True)
    directory = Path(args.target)
    if not directory.is_dir():
        directory = (args.root or RunnerSettings().runs_root) / args.target
    try:
        index = make_report(directory)
    except ReportError as exc:
        console.print(f"✗ {exc}", markup=False)
        return 1
    console.print(f"{index}", markup=False)
    return 0
