"""A Sweep's shared RayCluster (`placement.kubernetes.sharedCluster`): made, then deleted.

While the sweep runs, its RayCluster exists (created once per operator run: creating what
exists is success, so a restarted operator asks once more); when the sweep has ended, it
is deleted once (KubeRay stops the Ray jobs still on it). The cluster is owned by the
Sweep, so deleting the Sweep deletes it too. Each trial's RayJob names it in its
`clusterSelector` (rlops.backends.kuberay.shared).
"""

from __future__ import annotations

from rlops.api import Backend, Sweep
from rlops.api.settings import Settings
from rlops.backends.kuberay import RAYCLUSTERS, ObjectApi, build_shared_cluster
from rlops.backends.kuberay import shared_cluster_name as cluster_name
from rlops.operator.progress import Key
from rlops.sweep.placement import trial_placement


def shares_cluster(sweep: Sweep) -> bool:
    k8s = sweep.spec.placement.kubernetes
    return k8s is not None and bool(k8s.shared_cluster)


class SharedClusters:
    """The shared RayClusters of the operator's sweeps (see the module)."""

    def __init__(self, api: ObjectApi, settings: Settings) -> None:
        self.api = api
        self.settings = settings
        self.made: set[Key] = set()
        self.deleted: set[Key] = set()

    def wanted(self, sweep: Sweep, done: bool) -> bool:
        """Whether `sync` has a request to make (so the driver needs no thread otherwise)."""
        if not shares_cluster(sweep):
            return False
        key = (sweep.metadata.namespace or "", sweep.metadata.name or "")
        return key not in (self.deleted if done else self.made)

    def sync(self, sweep: Sweep, done: bool) -> None:
        """Make the sweep's cluster while it runs; delete it once it is done."""
        if not shares_cluster(sweep):
            return
        namespace, name = sweep.metadata.namespace or "", sweep.metadata.name or ""
        key = (namespace, name)
        if done:
            if key not in self.deleted:
                self.api.delete(RAYCLUSTERS, namespace, cluster_name(name))
                self.deleted.add(key)
                self.made.discard(key)
        elif key not in self.made:
            spec = sweep.spec.template
            placement = trial_placement(sweep.spec, spec.placement, Backend.KUBERNETES)
            trial = spec.model_copy(update={"placement": placement})
            self.api.create(
                RAYCLUSTERS, namespace, build_shared_cluster(sweep, trial, self.settings)
            )
            self.made.add(key)
            self.deleted.discard(key)

    def forget(self, key: Key) -> None:
        self.made.discard(key)
        self.deleted.discard(key)
