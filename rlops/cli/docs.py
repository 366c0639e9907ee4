"""`rlops docs`: write the field reference generated from the models (docs/reference.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlops.api.docsgen import render_reference


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("docs", help="Write the field reference of RLExperiment and Sweep.")
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("docs/reference.md"),
        help="The Markdown file to write (docs/reference.md).",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="Write nothing; exit 1 when the file differs from what the models give.",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = render_reference()
    path: Path = args.output
    if args.check:
        current = path.read_text() if path.exists() else None
        if current != text:
            print(f"{path} is out of date: run `rlops docs -o {path}`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(path)
    return 0
