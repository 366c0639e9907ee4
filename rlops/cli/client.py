"""`rlops.Client`: RLExperiments and Sweeps on Kubernetes, from Python (a notebook, a script).

    client = rlops.Client(namespace="ml")
    client.apply("sweep.yaml")            # a path, a dict or a model; create or update
    sweep = client.wait("cartpole-grid")  # until Succeeded, Failed or Stopped
    print(client.logs("cartpole-grid-0"))
    client.pause("cartpole-grid-1"); client.resume("cartpole-grid-1")

It is the same code as the command line: `rlops status` builds the views, `rlops logs`
finds the logs, the annotations of `rlops.api.annotations` stop, pause and retry.
The official Kubernetes client is imported when a Client is made, not with `rlops`.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rlops.api import RLExperiment, Sweep
from rlops.api.annotations import ANNOTATION_ATTEMPT, ANNOTATION_PAUSE, ANNOTATION_STOP
from rlops.api.base import GROUP, VERSION
from rlops.api.manifests import load_documents
from rlops.api.validation import validate_manifest
from rlops.cli.overview import Overview, cluster_overview, kube_api

FINISHED = ("Succeeded", "Failed", "Stopped")
PLURALS = {"RLExperiment": "rlexperiments", "Sweep": "sweeps"}


class ClientError(RuntimeError):
    """A request the cluster cannot satisfy, with the reason."""


def manifests_of(manifest: str | Path | Mapping[str, Any] | BaseModel) -> list[dict[str, Any]]:
    """A path (several documents allowed), a mapping or a model, as manifest dicts."""
    if isinstance(manifest, str | Path):
        return load_documents(Path(manifest))
    if isinstance(manifest, BaseModel):
        body: dict[str, Any] = manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
        body.pop("status", None)
        return [body]
    return [dict(manifest)]


def checked(doc: dict[str, Any]) -> dict[str, Any]:
    """The manifest, or ValueError naming every invalid field."""
    errors = validate_manifest(doc)
    if errors:
        name = (doc.get("metadata") or {}).get("name", "")
        lines = "; ".join(f"{e.path}: {e.message}" for e in errors)
        raise ValueError(f"{doc.get('kind')} {name}: {lines}")
    return doc


class Client:
    """Sweeps and RLExperiments in one namespace of a cluster."""

    def __init__(
        self,
        namespace: str | None = None,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
    ) -> None:
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        self.context = context
        self.api, default_namespace = kube_api(self.kubeconfig, context)
        self.namespace: str = namespace or default_namespace

    # --- resources -------------------------------------------------------------------------

    def apply(
        self, manifest: str | Path | Mapping[str, Any] | BaseModel
    ) -> list[RLExperiment | Sweep]:
        """Create each manifest, or update its labels, annotations and spec if it exists."""
        import kubernetes.client

        applied: list[RLExperiment | Sweep] = []
        for doc in manifests_of(manifest):
            checked(doc)
            plural = PLURALS[doc["kind"]]
            name = doc["metadata"]["name"]
            doc = {**doc, "metadata": {**doc["metadata"], "namespace": self.namespace}}
            try:
                body = self.api.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, doc
                )
            except kubernetes.client.ApiException as exc:
                if exc.status != 409:
                    raise ClientError(f"{doc['kind']} {name}: {exc.reason}: {exc.body}") from exc
                meta = {
                    k: doc["metadata"][k] for k in ("labels", "annotations") if k in doc["metadata"]
                }
                patch = {"metadata": meta, "spec": doc["spec"]}
                body = self.api.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name, patch
                )
            applied.append(_model(body))
        return applied

    def get(self, name: str) -> RLExperiment | Sweep:
        """The Sweep called `name`, else the RLExperiment."""
        return _model(self._object(name)[1])

    def status(self, name: str | None = None) -> Overview:
        """What `rlops status` shows: sweeps (with trials when named) and experiments."""
        return cluster_overview(self.api, self.namespace, name)

    def wait(
        self,
        name: str,
        phases: tuple[str, ...] = FINISHED,
        timeout: float | None = None,
        poll_seconds: float = 2.0,
    ) -> RLExperiment | Sweep:
        """The resource once its phase is one of `phases` (by default: finished)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            resource = self.get(name)
            phase = resource.status.phase.value if resource.status else "Pending"
            if phase in phases:
                return resource
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{name}: still {phase} after {timeout} s")
            time.sleep(poll_seconds)

    def delete(self, name: str) -> None:
        plural, _ = self._object(name)
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    # --- one experiment ----------------------------------------------------------------

    def logs(
        self,
        name: str,
        follow: bool = False,
        out: Callable[[str], None] | None = None,
        root: str | Path | None = None,
    ) -> str:
        """The trial's log (the driver pod's, else its run directory's copy under `root`);
        with `follow`, until it ends, each chunk also passed to `out` as it comes."""
        from rlops.cli.logs import cluster_logs

        args = argparse.Namespace(
            kubeconfig=self.kubeconfig, context=self.context, namespace=self.namespace,
            name=name, follow=follow, poll=0.5, root=Path(root) if root else None,
        )  # fmt: skip
        text = io.StringIO()

        def collect(chunk: str) -> None:
            text.write(chunk)
            if out is not None:
                out(chunk)

        cluster_logs(args, collect)
        return text.getvalue()

    def stop(self, name: str, reason: str = "requested") -> RLExperiment:
        """Stop for good: phase Stopped, message `stopped: <reason>`."""
        return self._annotate(name, {ANNOTATION_STOP: reason})

    def pause(self, name: str, reason: str = "requested") -> RLExperiment:
        """Checkpoint and end as Paused (not finished) until resumed."""
        return self._annotate(name, {ANNOTATION_PAUSE: reason})

    def resume(self, name: str) -> RLExperiment:
        """A paused experiment runs again from its checkpoint (the same attempt)."""
        return self._annotate(name, {ANNOTATION_PAUSE: None})

    def retry(self, name: str) -> RLExperiment:
        """The next attempt, from the latest checkpoint (also after Failed or Succeeded)."""
        experiment = self._experiment(name)
        attempts = experiment.status.attempts if experiment.status else 0
        return self._annotate(name, {ANNOTATION_ATTEMPT: str(max(attempts, 1) + 1)})

    # --- helpers -------------------------------------------------------------------------

    def _object(self, name: str) -> tuple[str, dict[str, Any]]:
        import kubernetes.client

        for plural in ("sweeps", "rlexperiments"):
            try:
                body = self.api.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                )
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            return plural, body
        raise ClientError(f"no Sweep or RLExperiment {name!r} in namespace {self.namespace}")

    def _experiment(self, name: str) -> RLExperiment:
        resource = self.get(name)
        if not isinstance(resource, RLExperiment):
            raise ClientError(
                f"{name} is a Sweep: stop, pause, resume and retry act on its trials "
                f"(`rlops status {name}` lists them); delete the Sweep to end it"
            )
        return resource

    def _annotate(self, name: str, annotations: dict[str, str | None]) -> RLExperiment:
        self._experiment(name)
        body = self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rlexperiments", name,
            {"metadata": {"annotations": annotations}},
        )  # fmt: skip
        return RLExperiment.model_validate(body)


def _model(body: dict[str, Any]) -> RLExperiment | Sweep:
    if body.get("kind") == "Sweep":
        return Sweep.model_validate(body)
    return RLExperiment.model_validate(body)
