"""`rlops validate FILE...`: every error of every manifest, then a non-zero exit if any.

`--set KEY=VALUE` checks the manifests as `rlops run --set` would run them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from rlops.api.validation import validate_manifest
from rlops.cli.run import add_set_argument, effective_documents
from rlops.manifests import ManifestError
from rlops.runner.overrides import OverrideError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="Check RLExperiment and Sweep manifests.")
    p.add_argument("files", nargs="+", type=Path, help="YAML files (several documents allowed).")
    add_set_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    failed = False
    for path in args.files:
        try:
            documents = effective_documents(path, args.overrides)
        except (ManifestError, OverrideError) as exc:
            console.print(f"[red]✗[/red] {exc}")
            failed = True
            continue
        for index, doc in enumerate(documents):
            name = (doc.get("metadata") or {}).get("name", f"document {index}")
            errors = validate_manifest(doc)
            if errors:
                failed = True
                console.print(f"[red]✗[/red] {path} ({doc.get('kind')} {name}):")
                for err in errors:
                    console.print(f"    {err.path}: {err.message}", markup=False)
            else:
                console.print(f"[green]✓[/green] {path} ({doc.get('kind')} {name})")
    return 1 if failed else 0
