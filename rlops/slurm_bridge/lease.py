"""One active bridge per SLURM cluster: a coordination.k8s.io Lease named after the cluster.

Every bridge of a cluster (replicas, a restart on another login node) tries to hold
`rlops-bridge-<cluster>` before each poll; only its holder polls, the others stand by.
A holder that stops renewing for `duration_seconds` is replaced. Every write carries the
Lease's resourceVersion, so of two bridges racing for it exactly one wins, and two
replicas with the same `--bridge-id` never both submit. The holder takes over claims
(`rlops.dev/claimed-by`) left by other bridge ids of the cluster: they are stale, since
it alone runs the cluster now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Lease(Protocol):
    def acquire(self) -> bool:
        """Hold (or renew) the lease; False when another live bridge holds it."""
        ...


log = logging.getLogger("rlops.slurm_bridge")


def lease_name(cluster: str) -> str:
    return f"rlops-bridge-{cluster}"


def _now() -> datetime:
    return datetime.now(UTC)


class KubeLease:
    """Lease over `kubernetes.client.CoordinationV1Api`."""

    def __init__(
        self,
        api: Any,
        namespace: str,
        cluster: str,
        holder: str,
        duration_seconds: int = 60,
        clock: Any = _now,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = lease_name(cluster)
        self.holder = holder
        self.duration = duration_seconds
        self.clock = clock
        self.warned = False

    def _body(self, resource_version: str | None, transitions: int) -> dict[str, Any]:
        now = self.clock().isoformat(timespec="microseconds").replace("+00:00", "Z")
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    def acquire(self) -> bool:
        import kubernetes.client

        try:
            current = self.api.read_namespaced_lease(self.name, self.namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 403:
                return self._forbidden(exc)
            if exc.status != 404:
                raise
            return self._write(lambda: self.api.create_namespaced_lease(
                self.namespace, self._body(None, 0)))  # fmt: skip
        spec = current.spec
        mine = spec.holder_identity == self.holder
        released = not spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        expired = renewed is None or (
            renewed + timedelta(seconds=spec.lease_duration_seconds or self.duration) < self.clock()
        )
        if not (mine or expired or released):
            return False
        transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
        body = self._body(current.metadata.resource_version, transitions)
        return self._write(
            lambda: self.api.replace_namespaced_lease(self.name, self.namespace, body)
        )

    def _forbidden(self, exc: Exception) -> bool:
        """A Role without rights on leases (an older rbac.yaml): run as the only bridge, as
        before leases, and say so once."""
        if not self.warned:
            log.warning("no rights on the Lease %s/%s (%s): running without one; give the "
                        "bridge's Role the lease rules of rbac.yaml", self.namespace, self.name,
                        getattr(exc, "reason", exc))  # fmt: skip
            self.warned = True
        return True

    def release(self) -> None:
        """Give the lease up (a bridge that stops), so that another takes over at once."""
        import kubernetes.client

        try:
            current = self.api.read_namespaced_lease(self.name, self.namespace)
            if current.spec.holder_identity != self.holder:
                return
            body = self._body(
                current.metadata.resource_version, current.spec.lease_transitions or 0
            )
            body["spec"]["holderIdentity"] = ""
            self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except kubernetes.client.ApiException:
            return  # it expires by itself

    def _write(self, call: Any) -> bool:
        import kubernetes.client

        try:
            call()
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:  # another bridge got there first
                return False
            if exc.status == 403:
                return self._forbidden(exc)
            raise
        return True
