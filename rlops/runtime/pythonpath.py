"""Where custom environment code is imported from, in the driver and on Ray workers.

The import path is, in order: the `RLOPS_PYTHONPATH` entries, the manifest's
directory (when `--spec` names a file), and the working directory. The driver puts
them at the front of `sys.path`; Ray workers get them through the job's
`runtime_env` (`env_vars.PYTHONPATH`, before any PYTHONPATH already set), which
works the same for a local Ray and for a cluster the runtime connects to. The paths
must exist on every node: shared storage on SLURM, the image on Kubernetes.

A driver started by Ray job submission (a RayJob) may already carry a job-level
`runtime_env` whose `env_vars` set PYTHONPATH; Ray refuses to merge two values of one
variable, so the runtime's value includes the job's entries (after its own) and
replaces it (`RAY_OVERRIDE_JOB_RUNTIME_ENV=1`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
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


# Set by Ray for the driver of a submitted job: the job's config, runtime_env included.
JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def job_pythonpath(environ: Mapping[str, str]) -> list[str] | None:
    """PYTHONPATH entries of a submitted job's runtime_env, or None when it sets none."""
    try:
        config = json.loads(environ.get(JOB_CONFIG_VAR) or "{}")
    except ValueError:
        return None
    env_vars = (config.get("runtime_env") or {}).get("env_vars") or {}
    value = env_vars.get("PYTHONPATH")
    return [p for p in value.split(os.pathsep) if p] if isinstance(value, str) else None


def runtime_env(paths: list[str], environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The Ray runtime_env that gives workers the same import paths (and what they had)."""
    inherited = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    joined = os.pathsep.join(dict.fromkeys([*paths, *(job_pythonpath(environ) or []), *inherited]))
    return {"env_vars": {"PYTHONPATH": joined}}
