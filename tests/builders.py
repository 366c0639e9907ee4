"""Builders for tests: manifests (`experiment("x").algorithm("DQN").obj()`, `sweep`) and what
the drivers observe: a RayJob as KubeRay reports it (`rayjob`), a SLURM job (`slurm_job`)
and a sweep's child trial as the API server returns it (`child_trial`)."""

from __future__ import annotations

import copy
import json
from typing import Any, Self

from rlops.backends.slurm import JobObservation


class _Builder:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def set(self, dotted: str, value: Any) -> Self:
        """Set any field by a dotted path (`spec.stop.timesteps`)."""
        node = self.body
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        return self

    def drop(self, dotted: str) -> Self:
        node = self.body
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self.body)


class ExperimentBuilder(_Builder):
    def algorithm(self, name: str) -> Self:
        return self.set("spec.algorithm", name)

    def env(self, env_id: str) -> Self:
        return self.set("spec.environment", {"id": env_id})

    def config(self, group: str, **settings: Any) -> Self:
        self.body["spec"].setdefault("config", {}).setdefault(group, {}).update(settings)
        return self

    def command(self, *argv: str, **config: Any) -> Self:
        """A command trainer instead of RLlib: `argv`, with `config` as its spec.config."""
        self.body["spec"].pop("algorithm", None)
        self.body["spec"].pop("environment", None)
        self.set("spec.config", config)
        return self.set("spec.command", list(argv))

    def stop(self, **criteria: Any) -> Self:
        return self.set("spec.stop", criteria)

    def slurm(self, **settings: Any) -> Self:
        self.set("spec.placement.backend", "slurm")
        return self.set("spec.placement.slurm", {"cluster": "hpc", **settings})

    def kubernetes(self, **settings: Any) -> Self:
        self.set("spec.placement.backend", "kubernetes")
        return self.set("spec.placement.kubernetes", settings)


def experiment(name: str = "exp", namespace: str | None = None) -> ExperimentBuilder:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return ExperimentBuilder(
        {
            "apiVersion": "rlops.dev/v1alpha1",
            "kind": "RLExperiment",
            "metadata": meta,
            "spec": {
                "algorithm": "PPO",
                "environment": {"id": "CartPole-v1"},
                "config": {"training": {"train_batch_size_per_learner": 500}},
                "resources": {"envRunners": 0},
                "stop": {"timesteps": 2000},
            },
        }
    )


TABULAR_Q = "examples/tabular_q/train.py"  # the command-trainer example (standard library)


def tabular_q(name: str = "tabular-q", **config: Any) -> ExperimentBuilder:
    """The tabular Q-learning example as a command trainer, seed 1, found from the repo root."""
    return (
        experiment(name)
        .command("python", TABULAR_Q, **{"episodes_per_iteration": 50, **config})
        .set("spec.seed", 1)
    )


class SweepBuilder(_Builder):
    def param(self, key: str, type: str, **fields: Any) -> Self:
        self.body["spec"].setdefault("parameters", {})[key] = {"type": type, **fields}
        return self

    def template(self, dotted: str, value: Any) -> Self:
        return self.set(f"spec.template.{dotted}", value)


def sweep(name: str = "sw", namespace: str | None = None) -> SweepBuilder:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    template = experiment().obj()["spec"]
    return SweepBuilder(
        {
            "apiVersion": "rlops.dev/v1alpha1",
            "kind": "Sweep",
            "metadata": meta,
            "spec": {"template": template, "parameters": {}, "algorithm": "grid"},
        }
    )


# --- observations -----------------------------------------------------------------------

CREATED = "2025-01-01T11:59:00Z"


def rayjob(
    deployment: str | None = None,
    job: str | None = None,
    *,
    name: str = "cp",
    attempt: int | None = 1,
    **status: Any,
) -> dict[str, Any]:
    """A RayJob as KubeRay reports it: `jobDeploymentStatus` and `jobStatus` (left out when
    None) and any other status field, with the attempt label rlops puts on it."""
    labels = {"rlops.dev/attempt": str(attempt)} if attempt is not None else {}
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": CREATED},
        "status": dict(status),
    }
    if deployment is not None:
        body["status"]["jobDeploymentStatus"] = deployment
    if job is not None:
        body["status"]["jobStatus"] = job
    return body


def slurm_job(
    state: str = "RUNNING", job_id: str = "7", name: str = "rlops-x", **fields: Any
) -> JobObservation:
    """A SLURM job as squeue/sacct report it (`JobObservation`): state, id, name and any
    other field (submit_time, start_time, nodes, comment, exit_code, ...)."""
    return JobObservation(job_id, name, state, **fields)


def child_trial(manifest: dict[str, Any], **status: Any) -> dict[str, Any]:
    """A sweep's child RLExperiment as the API server returns it: the manifest the sweep
    created, with a creation time and, if given, a status."""
    child: dict[str, Any] = json.loads(json.dumps(manifest))
    child["metadata"]["creationTimestamp"] = "2025-01-01T11:00:00Z"
    if status:
        child["status"] = status
    return child
