"""The Kubernetes backend: an RLExperiment becomes one KubeRay RayJob.

`build_rayjob` renders it (pure), `observe_rayjob` maps its status (pure),
`KubeRayBackend` submits, observes and cancels it through the Kubernetes API.
"""

from rlops.backends.kuberay.builder import (
    LABEL_ATTEMPT,
    LABEL_EXPERIMENT,
    build_rayjob,
    progress_secret,
    progress_token,
    run_dir,
)
from rlops.backends.kuberay.client import KubeRayBackend
from rlops.backends.kuberay.status import TERMINAL_DEPLOYMENT, observe_rayjob, paused_at

__all__ = [
    "LABEL_ATTEMPT",
    "LABEL_EXPERIMENT",
    "TERMINAL_DEPLOYMENT",
    "KubeRayBackend",
    "build_rayjob",
    "observe_rayjob",
    "paused_at",
    "progress_secret",
    "progress_token",
    "run_dir",
]
