"""The kopf handlers: a few lines each, all level-triggered.

Every handler reacts to "something changed" by reconciling the whole object
from the indexes, so a missed, repeated or reordered event changes nothing.
Only watch-event, index and timer handlers are used: kopf keeps no
last-handled-configuration or progress annotations on any object, and the only
finalizer is the one kopf sets on unfinished Sweeps for their resync timer.
"""

from __future__ import annotations

from typing import Any

import kopf

from rlops.api import SweepPhase
from rlops.backends.kuberay import LABEL_EXPERIMENT
from rlops.operator.admission import register_admission
from rlops.operator.controller import Controller
from rlops.operator.packed import Packed, shed, slim_metadata
from rlops.operator.progress import ProgressHub
from rlops.sweep import LABEL_SWEEP

GROUP, VERSION = "rlops.dev", "v1alpha1"
LIST_CHUNK = 500  # objects per page of kopf's initial listing
FINISHED_SWEEP = {SweepPhase.SUCCEEDED.value, SweepPhase.FAILED.value, SweepPhase.STOPPED.value}


def compact_trial(body: kopf.Body) -> dict[str, Any]:
    """What a sweep plan reads of a child: less memory than whole bodies for big sweeps."""
    meta = body.metadata
    return {
        "metadata": {
            "name": meta.name,
            "labels": dict(meta.labels),
            "annotations": {
                k: v for k, v in meta.annotations.items() if k.startswith("rlops.dev/")
            },
            "creationTimestamp": meta.creation_timestamp,
        },
        "spec": {"placement": body.spec.get("placement") or {}},
        "status": dict(body.status),
    }


def slim(body: kopf.Body) -> dict[str, Any]:
    """An object as the operator reads it: spec and status, metadata without managedFields
    or kubectl's last applied configuration."""
    out = {k: v for k, v in dict(body).items() if k != "metadata"}
    out["metadata"] = slim_metadata(body.get("metadata") or {})
    return out


def slim_rayjob(body: kopf.Body) -> dict[str, Any]:
    """A RayJob as the operator reads it: its metadata and status (its spec, with the
    whole Ray cluster's pod templates, is the operator's own output and never read)."""
    return {
        "metadata": slim_metadata(body.get("metadata") or {}),
        "status": dict(body.get("status") or {}),
    }


def experiment_entry(body: kopf.Body) -> Packed:
    """The experiments index's entry. kopf's raw body sheds what nothing reads; a sweep's
    trial keeps spec and status for the trials index, which kopf calls next (indexes run
    in the order they are registered), and sheds them there."""
    entry = Packed(slim(body))
    shed(body, content=LABEL_SWEEP not in body.metadata.labels)
    return entry


def trial_entry(body: kopf.Body) -> Packed:
    """The trials index's entry; the last index of an RLExperiment, so its raw body sheds
    spec and status."""
    entry = Packed(compact_trial(body))
    shed(body, content=True)
    return entry


def rayjob_entry(body: kopf.Body) -> Packed:
    """The rayjobs index's entry; kopf's raw body sheds spec and status too."""
    entry = Packed(slim_rayjob(body))
    shed(body, content=True)
    return entry


def ns(namespace: str | None) -> str:
    assert namespace is not None, "rlops resources are namespaced"
    return namespace


def register(registry: kopf.OperatorRegistry, controller: Controller, hub: ProgressHub) -> None:
    """Register every handler of the operator on `registry`."""
    resync = controller.settings.resync_seconds
    register_admission(registry, controller)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # our own events are posted on phase transitions
        settings.persistence.finalizer = "rlops.dev/operator"
        settings.watching.server_timeout = 300
        settings.peering.lifetime = controller.settings.peering_lifetime_seconds
        # Memory at scale: the initial listing in pages, not one response of every object,
        # and a per-object worker (holding its last event) ends 1 s after its last event.
        settings.watching.chunk_size = LIST_CHUNK
        settings.queueing.idle_timeout = 1.0

    @kopf.index(GROUP, VERSION, "rlexperiments", id="experiments", registry=registry)
    def experiments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
        return {(ns(namespace), name): experiment_entry(body)}

    @kopf.index(
        GROUP,
        VERSION,
        "rlexperiments",
        labels={LABEL_SWEEP: kopf.PRESENT},
        id="trials",
        registry=registry,
    )
    def trials(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
        return {(ns(namespace), labels[LABEL_SWEEP]): trial_entry(body)}

    @kopf.index(
        "ray.io",
        "v1",
        "rayjobs",
        labels={LABEL_EXPERIMENT: kopf.PRESENT},
        id="rayjobs",
        registry=registry,
    )
    def rayjobs(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
        return {(ns(namespace), labels[LABEL_EXPERIMENT]): rayjob_entry(body)}

    @kopf.index(GROUP, VERSION, "sweeps", id="sweeps", registry=registry)
    def sweeps(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
        return {(ns(namespace), name): Packed(slim(body))}

    @kopf.on.event(GROUP, VERSION, "rlexperiments", registry=registry)
    async def experiment_event(
        type: str, namespace: str | None, name: str, labels: kopf.Labels, **kwargs: Any
    ) -> None:
        controller.indexes.bind(**kwargs)
        key = (ns(namespace), name)
        if type == "DELETED":
            controller.forget_experiment(key)
            hub.forget(key)
        else:
            await controller.sync_experiment(key)
        if LABEL_SWEEP in labels:
            controller.poke_sweep((ns(namespace), labels[LABEL_SWEEP]))

    @kopf.on.event(
        "ray.io", "v1", "rayjobs", labels={LABEL_EXPERIMENT: kopf.PRESENT}, registry=registry
    )
    async def rayjob_event(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
        controller.indexes.bind(**kwargs)
        await controller.sync_experiment((ns(namespace), labels[LABEL_EXPERIMENT]))

    @kopf.on.event(GROUP, VERSION, "sweeps", registry=registry)
    async def sweep_event(type: str, namespace: str | None, name: str, **kwargs: Any) -> None:
        controller.indexes.bind(**kwargs)
        if type == "DELETED":
            controller.forget_sweep((ns(namespace), name))
        else:
            controller.poke_sweep((ns(namespace), name))

    def unfinished(status: kopf.Status, **_: Any) -> bool:
        return status.get("phase") not in FINISHED_SWEEP

    @kopf.timer(GROUP, VERSION, "sweeps", interval=resync, when=unfinished, registry=registry)
    async def resync_sweep(namespace: str | None, name: str, **kwargs: Any) -> None:
        """Re-plan unfinished sweeps now and then: burst deadlines pass without events."""
        controller.indexes.bind(**kwargs)
        controller.poke_sweep((ns(namespace), name))
