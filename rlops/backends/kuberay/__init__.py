"""The Kubernetes backend: an RLExperiment becomes one KubeRay RayJob.

`build_rayjob` renders it (pure), `observe_rayjob` maps its status (pure),
`KubeRayBackend` (the `ExperimentBackend` the operator drives) submits, observes, ends
and cancels it through the Kubernetes API.
"""

from rlops.backends.kuberay.builder import (
    LABEL_ATTEMPT,
    LABEL_EXPERIMENT,
    build_rayjob,
    progress_secret,
    progress_token,
    run_dir,
)
from rlops.backends.kuberay.client import (
    RAYJOBS,
    KubeRayBackend,
    ObjectApi,
    Seen,
    Watched,
    refusal,
)
from rlops.backends.kuberay.status import (
    TERMINAL_DEPLOYMENT,
    observe_rayjob,
    paused_at,
    rayjob_work,
)

__all__ = [
    "LABEL_ATTEMPT",
    "LABEL_EXPERIMENT",
    "RAYJOBS",
    "TERMINAL_DEPLOYMENT",
    "KubeRayBackend",
    "ObjectApi",
    "Seen",
    "Watched",
    "build_rayjob",
    "observe_rayjob",
    "paused_at",
    "progress_secret",
    "progress_token",
    "rayjob_work",
    "refusal",
    "run_dir",
]
