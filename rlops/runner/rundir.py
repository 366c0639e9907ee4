"""Opening a run directory again: resume, refuse a changed manifest, or start anew."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlops.api import RLExperiment, Sweep
from rlops.runner.layout import differences

# Settings of the driver, not of the search: changing them keeps the run resumable.
DRIVER_ONLY = ("spec.parallelism",)


@dataclass(frozen=True)
class Reopened:
    """What prepare() found: an earlier run to resume, and whether its manifest changed."""

    resumed: bool
    changed: bool = False


class RunDirConflict(RuntimeError):
    """The directory holds a run of a different manifest."""


def canonical(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with defaults filled in, so that spelling out a default is no change."""
    body = {k: v for k, v in manifest.items() if k != "status"}
    model = Sweep if body.get("kind") == "Sweep" else RLExperiment
    return model.model_validate(body).dump()


def manifest_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        d
        for d in differences(canonical(old), canonical(new))
        if not any(d.startswith(f"{p}:") for p in DRIVER_ONLY)
    ]


def prepare(
    root: Path,
    manifest_file: Path,
    manifest: dict[str, Any],
    force: bool,
    new: bool,
    say: Callable[[str], None],
) -> Reopened:
    """Make `root` ready for `manifest`, saying whether an earlier run is resumed.

    - no directory: a fresh run;
    - the same manifest: resume (finished trials are kept);
    - a changed manifest: refused, unless `force` (resume under the new manifest) or
      `new` (the old directory is renamed aside and a fresh run starts).
    """
    if not root.exists():
        return Reopened(resumed=False)
    if new:
        aside = root.with_name(f"{root.name}.{time.strftime('%Y%m%d-%H%M%S')}")
        root.rename(aside)
        say(f"--new: the earlier run was moved to {aside}")
        return Reopened(resumed=False)
    if not manifest_file.exists():
        return Reopened(resumed=False)
    try:
        old = yaml.safe_load(manifest_file.read_text())
        changes = manifest_changes(old, manifest)
    except (yaml.YAMLError, ValueError) as exc:
        changes = [f"{manifest_file}: unreadable ({exc})"]
    if changes and not force:
        listed = "\n".join(f"  {c}" for c in changes[:20])
        more = f"\n  ... and {len(changes) - 20} more" if len(changes) > 20 else ""
        raise RunDirConflict(
            f"{root} holds a run of a different manifest:\n{listed}{more}\n"
            "Run it again unchanged to resume, or pass --new to start a fresh run (the old "
            "directory is kept aside), or --force to resume under the new manifest, or give "
            "it another name with --set metadata.name=..."
        )
    if changes:
        say(f"--force: resuming {root} under the changed manifest ({len(changes)} change(s))")
    return Reopened(resumed=True, changed=bool(changes))
