"""`rlops validate FILE...`: every error of every manifest, then a non-zero exit if any.

`--set KEY=VALUE` checks the manifests as `rlops run --set` would run them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from rlops.api.classrefs import class_refs
from rlops.api.manifests import ManifestError
from rlops.api.validation import FieldError, validate_manifest
from rlops.cli.run import add_set_argument, effective_documents
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
            errors = validate_manifest(doc) or class_import_errors(doc, path)
            if errors:
                failed = True
                console.print(f"[red]✗[/red] {path} ({doc.get('kind')} {name}):")
                for err in errors:
                    console.print(f"    {err.path}: {err.message}", markup=False)
            else:
                console.print(f"[green]✓[/green] {path} ({doc.get('kind')} {name})")
    return 1 if failed else 0


def class_import_errors(doc: dict[str, Any], path: Path) -> list[FieldError]:
    """Class-valued RLlib settings (`pkg.module:Name`) that do not import from the paths a
    trial would import them from: RLOPS_PYTHONPATH, the manifest's directory, the cwd."""
    spec = doc.get("spec") or {}
    prefix, config = "spec.config", spec.get("config")
    if doc.get("kind") == "Sweep":
        prefix, config = "spec.template.config", (spec.get("template") or {}).get("config")
    if not isinstance(config, dict) or not any(True for _ in class_refs(config)):
        return []
    from rlops.runtime.algo_config import import_problems
    from rlops.runtime.pythonpath import activate, import_paths

    saved = list(sys.path)
    activate(
        import_paths(os.environ.get("RLOPS_PYTHONPATH", ""), path.resolve().parent, Path.cwd())
    )
    try:
        return [FieldError(f"{prefix}.{p}", m) for p, m in import_problems(config)]
    finally:
        sys.path[:] = saved
