"""The KubeRay backend: RayJobs through the Kubernetes API (the official client)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rlops.api.experiment import BackendRef, KubernetesPlacement, RLExperiment
from rlops.api.settings import Settings
from rlops.backends.base import Observation
from rlops.backends.kuberay.builder import build_rayjob
from rlops.backends.kuberay.status import observe_rayjob

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"


def _status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


class KubeRayBackend:
    """Submit, observe and cancel an experiment's RayJob. Every call is idempotent."""

    def __init__(self, api: Any, settings: Settings) -> None:
        """`api`: a `kubernetes.client.CustomObjectsApi`."""
        self.api = api
        self.settings = settings

    def _ref(self, experiment: RLExperiment) -> tuple[str, str]:
        meta = experiment.metadata
        assert meta.namespace and meta.name
        return meta.namespace, meta.name

    def submit(self, experiment: RLExperiment, attempt: int) -> BackendRef:
        namespace, name = self._ref(experiment)
        body = build_rayjob(experiment, self.settings, attempt)
        try:
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        except Exception as exc:
            if _status_of(exc) != 409:  # AlreadyExists: submitted before.
                raise
        return BackendRef(kind="RayJob", name=name, namespace=namespace)

    def get(self, experiment: RLExperiment) -> dict[str, Any] | None:
        namespace, name = self._ref(experiment)
        try:
            body: dict[str, Any] = self.api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except Exception as exc:
            if _status_of(exc) == 404:
                return None
            raise
        return body

    def observe(self, experiment: RLExperiment) -> Observation | None:
        rayjob = self.get(experiment)
        if rayjob is None:
            return None
        placement = experiment.spec.placement.kubernetes or KubernetesPlacement()
        return observe_rayjob(rayjob, placement, datetime.now(UTC))

    def cancel(self, experiment: RLExperiment) -> None:
        namespace, name = self._ref(experiment)
        try:
            self.api.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
            )
        except Exception as exc:
            if _status_of(exc) != 404:
                raise
