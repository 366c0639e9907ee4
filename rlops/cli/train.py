"""`rlops train --spec FILE --run-dir DIR`: the runtime, as a subcommand.

The same as `python -m rlops.runtime`; Ray is imported only when training starts.
"""

from __future__ import annotations

import argparse

from rlops.runtime.options import add_arguments


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="Train one RLExperiment with RLlib into a run directory (the container entrypoint).",
        description=(
            "Train one RLExperiment with RLlib. Exit codes: 0 succeeded, 1 failed, "
            "2 invalid manifest, 75 signalled and checkpointed (requeue)."
        ),
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlops.runtime.main import run as run_runtime

    return run_runtime(args)
