"""A trial's RayJob on its sweep's shared RayCluster (`placement.kubernetes.sharedCluster`).

KubeRay (v1.7) runs a RayJob on an existing RayCluster when the RayJob has a
`clusterSelector` (`ray.io/cluster: <name>`) and no `rayClusterSpec`: it waits for that
cluster, submits the job to its dashboard and, when the job ends or the RayJob is deleted,
stops the Ray job and leaves the cluster alone. Its validation forbids `suspend` (Kueue
admits the cluster as a whole, not each job), `SidecarMode` (so such a RayJob is submitted
by the K8sJobMode submitter pod) and `backoffLimit` above 0.

The shared head container serves every trial, so it cannot read one trial's progress token
from that trial's Secret: the token travels in the RayJob's runtime environment instead
(`RLOPS_PROGRESS_TOKEN`). It lets its holder report progress for that one trial only.
"""

from __future__ import annotations

from typing import Any

from rlops.api.experiment import RLExperiment

# KubeRay's RayJobClusterSelectorKey: the label naming the RayCluster a RayJob runs on.
CLUSTER_SELECTOR_KEY = "ray.io/cluster"
# The label the operator puts on a sweep's trials (rlops.sweep.LABEL_SWEEP).
SWEEP_LABEL = "rlops.dev/sweep"
# Fields of a RayJob that KubeRay's validation refuses, or ignores, with a clusterSelector.
NOT_WITH_SELECTOR = ("rayClusterSpec", "suspend")


def shared_cluster_name(sweep: str) -> str:
    """The RayCluster shared by the trials of sweep `sweep`."""
    return f"{sweep}-ray"


def shared_cluster_of(experiment: RLExperiment) -> str | None:
    """The shared RayCluster the experiment runs on, if it is a trial of a sweep with one."""
    k8s = experiment.spec.placement.kubernetes
    sweep = experiment.metadata.labels.get(SWEEP_LABEL)
    if k8s is None or not k8s.shared_cluster or not sweep:
        return None
    return shared_cluster_name(sweep)


def on_shared_cluster(rayjob_spec: dict[str, Any], cluster: str) -> dict[str, Any]:
    """`rayjob_spec` (a rendered RayJob's spec) made to run on the RayCluster `cluster`."""
    spec = {k: v for k, v in rayjob_spec.items() if k not in NOT_WITH_SELECTOR}
    spec["clusterSelector"] = {CLUSTER_SELECTOR_KEY: cluster}
    spec["shutdownAfterJobFinishes"] = False  # the cluster outlives each of its jobs
    return spec
