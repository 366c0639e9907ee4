"""`placement.kubernetes.sharedCluster`: where it may be set (a Sweep on Kubernetes alone)."""

from __future__ import annotations

from rlops.api.experiment import RLExperiment
from rlops.api.placement import Backend
from rlops.api.sweep import SweepBackend, SweepSpec
from rlops.api.validation.errors import FieldError

# The label the operator puts on a sweep's trials (rlops.sweep.LABEL_SWEEP).
TRIAL_LABEL = "rlops.dev/sweep"
FIELD = "placement.kubernetes.sharedCluster"


def check_shared_sweep(spec: SweepSpec, path: str) -> list[FieldError]:
    """A Sweep shares a cluster only on Kubernetes, and asks for it in its own placement."""
    errors = []
    template = spec.template.placement.kubernetes
    if template is not None and template.shared_cluster:
        errors.append(FieldError(
            f"{path}.template.{FIELD}",
            f"set it on the Sweep ({path}.{FIELD}), not on its template",
        ))  # fmt: skip
    k8s = spec.placement.kubernetes
    if k8s is None or not k8s.shared_cluster:
        return errors
    if spec.placement.backend == SweepBackend.BURST:
        errors.append(FieldError(
            f"{path}.{FIELD}", "not with backend burst (trials on SLURM share no RayCluster)"
        ))  # fmt: skip
    elif (spec.placement.backend or spec.template.placement.backend) != Backend.KUBERNETES:
        backend = (spec.placement.backend or spec.template.placement.backend).value
        errors.append(FieldError(
            f"{path}.{FIELD}",
            f"only for trials on Kubernetes; the sweep's backend is {backend} "
            f"(set {path}.placement.backend or the template's to kubernetes)",
        ))  # fmt: skip
    return errors


def check_shared_experiment(experiment: RLExperiment, path: str) -> list[FieldError]:
    """An RLExperiment runs on a shared cluster only as a trial of a Sweep that made one."""
    k8s = experiment.spec.placement.kubernetes
    if k8s is None or not k8s.shared_cluster or TRIAL_LABEL in experiment.metadata.labels:
        return []
    return [FieldError(
        f"{path}.{FIELD}",
        "only a Sweep's trials share a RayCluster; set it on a Sweep "
        "(spec.placement.kubernetes.sharedCluster), or leave it out",
    )]  # fmt: skip
