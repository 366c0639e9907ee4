"""In-memory stand-ins for the bridge's two sides: an ExperimentStore over dicts (merge
patches, resourceVersion conflicts) and a SlurmClient over a table of jobs. They emulate the
contracts of KubeExperimentStore and CliSlurmClient, so one fault can be placed exactly."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlops.api.mergepatch import merged
from rlops.backends.slurm import JobObservation, SlurmBackend, SlurmRefused, SlurmSettings
from rlops.slurm_bridge.bridge import SlurmBridge
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import Conflict
from tests.builders import experiment, slurm_job

NAMESPACE = "team"
CLUSTER = "hpc"


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        meta.setdefault("namespace", NAMESPACE)
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        self.objects[meta["namespace"], meta["name"]] = body
        return body

    def get(self, name: str) -> dict[str, Any]:
        return self.objects[NAMESPACE, name]

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def list(self, namespace: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(b) for (ns, _), b in self.objects.items() if ns == namespace]

    def patch_metadata(
        self, namespace: str, name: str, metadata: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        body = self.objects.get((namespace, name))
        if body is None or body["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(f"{namespace}/{name} changed")
        body["metadata"] = merged(body["metadata"], metadata)
        if body["metadata"].get("deletionTimestamp") and not body["metadata"].get("finalizers"):
            del self.objects[namespace, name]
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(body)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> str | None:
        body = self.objects[namespace, name]
        body["status"] = merged(body.get("status"), status)
        self.version += 1  # as the API server: a status write is a new version too
        body["metadata"]["resourceVersion"] = str(self.version)
        return str(self.version)


class FakeSlurm:
    """Jobs by id; submit starts them RUNNING; `foreign` jobs belong to another user."""

    def __init__(self) -> None:
        self.table: dict[str, JobObservation] = {}
        self.owner: dict[str, str] = {}
        self.cancelled: list[str] = []
        self.next_id = 100

    def submit(self, script: str, *, hold: bool = False, comment: str | None = None) -> str:
        name = re.search(r"--job-name=(\S+)", script)
        found = re.search(r"--comment=(\S+)", script)
        self.next_id += 1
        job_id = str(self.next_id)
        self.table[job_id] = slurm_job(
            "RUNNING", job_id, name.group(1) if name else "",
            comment=comment or (found.group(1) if found else ""),
        )  # fmt: skip
        self.owner[job_id] = "me"
        return job_id

    def add_foreign(self, name: str, comment: str = "") -> str:
        self.next_id += 1
        job_id = str(self.next_id)
        self.table[job_id] = slurm_job("RUNNING", job_id, name, comment=comment)
        self.owner[job_id] = "other"
        return job_id

    def jobs(self, job_ids: Iterable[str]) -> dict[str, JobObservation]:
        return {j: self.table[j] for j in job_ids if j in self.table}

    def find_by_name(self, name: str) -> list[JobObservation]:
        return [j for j in self.table.values() if j.name == name and self.owner[j.job_id] == "me"]

    def cancel(self, job_id: str) -> None:
        if self.owner.get(job_id) == "other":
            raise SlurmRefused(f"scancel {job_id}: Access/permission denied")
        self.cancelled.append(job_id)
        if job_id in self.table:
            self.table[job_id] = replace(self.table[job_id], state="CANCELLED")

    def terminate(self, job_id: str) -> None:
        self.cancel(job_id)


def slurm_experiment(name: str, **storage: Any) -> dict[str, Any]:
    body = experiment(name).slurm(cluster=CLUSTER).obj()
    if storage:
        body["spec"]["storage"] = storage
    return body


def bridge(store: MemoryStore, slurm: FakeSlurm, run_root: Path) -> SlurmBridge:
    settings = SlurmSettings(run_root=run_root, python="/usr/bin/python3")
    return SlurmBridge(
        store,
        SlurmBackend(slurm, settings),
        BridgeSettings(cluster=CLUSTER, namespaces=[NAMESPACE], bridge_id="b1"),
    )


def run_dir(run_root: Path, name: str) -> Path:
    return run_root / NAMESPACE / name
