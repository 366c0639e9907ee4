"""`rlops crds`: write the CRDs generated from the models."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlops.api.crd import write_crds


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "crds", help="Write the CustomResourceDefinitions generated from the models."
    )
    p.add_argument("--output", "-o", type=Path, default=Path("crds"), help="Directory (crds/).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for path in write_crds(args.output):
        print(path)
    return 0
