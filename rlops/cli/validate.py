"""`rlops validate FILE...`: every error of every manifest, then a non-zero exit if any."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from rlops.api.validation import validate_manifest
from rlops.manifests import ManifestError, load_documents


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="Check RLExperiment and Sweep manifests.")
    p.add_argument("files", nargs="+", type=Path, help="YAML files (several documents allowed).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    failed = False
    for path in args.files:
        try:
            documents = load_documents(path)
        except ManifestError as exc:
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
