"""The Kubernetes backend: an RLExperiment becomes one KubeRay RayJob.

`build_rayjob` renders it (pure), `observe_rayjob` maps its status (pure),
`KubeRayBackend` (the `ExperimentBackend` the operator drives) submits, observes, ends
and cancels it through the Kubernetes API. `build_shared_cluster` renders the RayCluster of
a Sweep with `sharedCluster`, on which its trials' RayJobs run (`clusterSelector`).
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
from rlops.backends.kuberay.shared import shared_cluster_name
from rlops.backends.kuberay.status import (
    TERMINAL_DEPLOYMENT,
    observe_rayjob,
    paused_at,
    rayjob_work,
)
from rlops.backends.kuberay.sweepcluster import RAYCLUSTERS, build_shared_cluster

__all__ = [
    "LABEL_ATTEMPT",
    "LABEL_EXPERIMENT",
    "RAYCLUSTERS",
    "RAYJOBS",
    "TERMINAL_DEPLOYMENT",
    "KubeRayBackend",
    "ObjectApi",
    "Seen",
    "Watched",
    "build_rayjob",
    "build_shared_cluster",
    "observe_rayjob",
    "paused_at",
    "progress_secret",
    "progress_token",
    "rayjob_work",
    "refusal",
    "run_dir",
    "shared_cluster_name",
]
