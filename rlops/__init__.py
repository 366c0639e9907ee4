"""rlops: declarative reinforcement-learning experiments and sweeps.

Kubernetes (KubeRay), SLURM or this machine; one image, one status shape, one set of
Prometheus metrics. The resource models are in `rlops.api`.

From Python (docs/python-api.md):

- `rlops.run(manifest, backend="local", ...)` runs an RLExperiment or a Sweep as
  `rlops run` does and returns its result (`.phase`, `.best`, `.trials`);
- `rlops.Client(namespace=..., kubeconfig=...)` applies, watches and steers them on
  Kubernetes.

Both are imported on first use: `import rlops` loads neither Ray nor the Kubernetes
client (the operator and the SLURM bridge import this package without Ray).

Training programs of their own (command trainers, docs/command-trainers.md) may use
`rlops.report` and its neighbours: the standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlops.runtime.program import checkpoint_dir, report, resume_checkpoint, trainer_config
from rlops.version import __version__

__all__ = [
    "Client",
    "RunResult",
    "TrialResult",
    "__version__",
    "checkpoint_dir",
    "report",
    "resume_checkpoint",
    "run",
    "trainer_config",
]

if TYPE_CHECKING:
    from rlops.cli.client import Client
    from rlops.cli.python_api import RunResult, TrialResult, run

_LAZY = {
    "Client": "rlops.cli.client",
    "run": "rlops.cli.python_api",
    "RunResult": "rlops.cli.python_api",
    "TrialResult": "rlops.cli.python_api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlops' has no attribute {name!r}")
