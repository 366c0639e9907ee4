"""Where custom environment code is imported from, in the driver and on Ray workers.

The import path is, in order: the `RLOPS_PYTHONPATH` entries, the manifest's
directory (when `--spec` names a file), and the working directory. The driver puts
them at the front of `sys.path`; Ray workers get them through the job's
`runtime_env` (`env_vars.PYTHONPATH`, before any PYTHONPATH already set), which
works the same for a local Ray and for a cluster the runtime connects to. The paths
must exist on every node: shared storage on SLURM, the image on Kubernetes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def import_paths(extra: str, manifest_dir: Path | None, cwd: Path) -> list[str]:
    """Absolute import paths, without duplicates, in priority order."""
    entries = [Path(p) for p in extra.split(os.pathsep) if p]
    if manifest_dir is not None:
        entries.append(manifest_dir)
    entries.append(cwd)
    paths = [str(p if p.is_absolute() else cwd / p) for p in entries]
    return list(dict.fromkeys(paths))


def activate(paths: list[str]) -> None:
    """Put `paths` at the front of this process's sys.path."""
    for path in reversed(paths):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)


def runtime_env(paths: list[str]) -> dict[str, Any]:
    """The Ray runtime_env that gives workers the same import paths."""
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    joined = os.pathsep.join(dict.fromkeys([*paths, *existing]))
    return {"env_vars": {"PYTHONPATH": joined}}
