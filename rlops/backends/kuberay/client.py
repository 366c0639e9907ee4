"""`KubeRayBackend`: an experiment's attempts as RayJobs, through the Kubernetes API.

It implements `rlops.backends.base.ExperimentBackend` over an `ObjectApi` (the operator's
client of the official `kubernetes` package): submit creates the attempt's progress-token
Secret and its RayJob, observe maps RayJobs into the lifecycle's `Observation`s (from the
bodies an event-driven driver already holds, else one GET each), end and cancel delete the
RayJob (the runtime checkpoints on SIGTERM). Every call is idempotent: creating what
exists or deleting what is gone is success. An event-driven driver hands it a `Watched`
reader of the RayJobs its watch holds, so observing reads no more than the watch did.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from rlops.api.experiment import (
    Backend,
    BackendRef,
    KubernetesPlacement,
    ResourcesSpec,
    RLExperiment,
)
from rlops.api.kinds import Kind
from rlops.api.settings import Settings
from rlops.backends.base import (
    EndKind,
    ExperimentBackend,
    Observation,
    Refused,
    Submission,
    submitted_or_refused,
    work_key,
)
from rlops.backends.kuberay.builder import build_rayjob, progress_secret
from rlops.backends.kuberay.shared import shared_cluster_of
from rlops.backends.kuberay.status import rayjob_work

RAYJOBS = Kind("ray.io", "v1", "rayjobs")
REFUSED = frozenset({400, 403, 422})

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Seen:
    """What a driver's watch holds of an experiment's RayJob: its body, or None (absent)."""

    body: Body | None


# A driver's reader of its watch: what it holds of the experiment's RayJob, or None when
# that may lag (the backend reads the RayJob itself).
Watched = Callable[[RLExperiment], Seen | None]


def _unwatched(experiment: RLExperiment) -> Seen | None:
    return None


class ObjectApi(Protocol):
    """The Kubernetes calls the backend makes (the operator's `Kube` is one)."""

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool: ...

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None: ...

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None: ...

    def delete(self, kind: Kind, namespace: str, name: str) -> None: ...


def refusal(exc: BaseException) -> str | None:
    """The API server's reason when `exc` is a refusal that a retry would get again."""
    if not isinstance(exc, ApiException) or exc.status not in REFUSED:
        return None
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or exc.reason or f"HTTP {exc.status}")


def _where(experiment: RLExperiment | None, ref: BackendRef | None) -> tuple[str, str] | None:
    if experiment is not None:
        meta = experiment.metadata
        return meta.namespace or "", meta.name or ""
    if ref is not None and ref.name:
        return ref.namespace or "", ref.name
    return None


class KubeRayBackend:
    """Experiments as KubeRay RayJobs (see the module)."""

    backend = Backend.KUBERNETES

    def __init__(
        self,
        api: ObjectApi,
        settings: Settings,
        watched: Watched = _unwatched,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`watched`: the RayJobs the driver's watch holds; `clock`: the time the
        pre-running deadline counts to."""
        self.api = api
        self.settings = settings
        self.watched = watched
        self.clock = clock

    def check(self, name: str, resources: ResourcesSpec) -> None:
        return None  # the API server's admission and the scheduler decide.

    def close(self) -> None:
        return None  # RayJobs outlive the driver.

    def submit(self, submission: Submission) -> BackendRef:
        """Create the attempt's token Secret, then its RayJob (a resumed attempt is the same
        RayJob again: the runtime continues from its checkpoint). `previous` needs nothing:
        the lifecycle deletes an earlier attempt's RayJob before it submits the next."""
        experiment, attempt = submission.experiment, submission.attempt
        namespace, name = _where(experiment, None) or ("", "")
        # A trial on a shared cluster brings its token in its job's runtime env (shared.py).
        secret = [] if shared_cluster_of(experiment) else [
            ("Secret", progress_secret(experiment, self.settings))
        ]  # fmt: skip
        for kind, body in (*secret, ("RayJob", build_rayjob(experiment, self.settings, attempt))):
            try:
                if kind == "Secret":
                    self.api.apply_secret(namespace, body)
                else:
                    self.api.create(RAYJOBS, namespace, body)
            except ApiException as exc:
                reason = refusal(exc)
                if reason is None:
                    raise
                name_ = body["metadata"]["name"]
                raise Refused(f"the API server refused the {kind} {name_}: {reason}") from exc
        return BackendRef(kind="RayJob", name=name, namespace=namespace)

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        """One RayJob each: Kubernetes has no batched create."""
        return [submitted_or_refused(self, submission) for submission in submissions]

    def observe(
        self, work: Sequence[tuple[RLExperiment, BackendRef | None]]
    ) -> dict[str, Observation | None]:
        """Each experiment's RayJob as the lifecycle sees it: the body the driver's watch
        holds (`watched`), else one GET each."""
        moment = self.clock()
        seen: dict[str, Observation | None] = {}
        for experiment, _ in work:
            known = self.watched(experiment)
            if known is not None:
                rayjob = known.body
            else:
                namespace, name = _where(experiment, None) or ("", "")
                rayjob = self.api.get(RAYJOBS, namespace, name)
            placement = experiment.spec.placement.kubernetes or KubernetesPlacement()
            seen[work_key(experiment)] = rayjob_work(rayjob, placement, moment)
        return seen

    def end(self, experiment: RLExperiment, ref: BackendRef | None, kind: EndKind) -> list[str]:
        """Delete the RayJob: KubeRay stops the Ray job, the runtime checkpoints on SIGTERM."""
        return self.cancel(experiment, ref)

    def cancel(self, experiment: RLExperiment | None, ref: BackendRef | None) -> list[str]:
        where = _where(experiment, ref)
        if where is None:
            return []
        self.api.delete(RAYJOBS, *where)
        return [where[1]]


# mypy checks here that KubeRayBackend implements the protocol the drivers drive.
_IMPLEMENTS: Callable[[ObjectApi, Settings, Watched], ExperimentBackend] = KubeRayBackend
