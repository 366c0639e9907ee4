"""A Sweep's shared RayCluster (`placement.kubernetes.sharedCluster`): the RayCluster the
builder renders (sized from `parallelism` and one trial, the Kueue label and `suspend`,
owned by the Sweep, accepted by KubeRay's v1.7.0 CRD schema), each trial's RayJob on it
(`clusterSelector`, none of the fields KubeRay refuses with one, its own deadline and
progress token), the backend's submit, and the validation that says where the field may be.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml

from rlops.api import Backend, RLExperimentSpec, Sweep
from rlops.api.validation import validate_manifest
from rlops.backends.base import Submission
from rlops.backends.kuberay import (
    KubeRayBackend,
    build_rayjob,
    build_shared_cluster,
    progress_token,
)
from rlops.backends.kuberay.security import TOKEN_ENV
from rlops.backends.kuberay.sweepcluster import RAYCLUSTERS
from rlops.sweep.placement import trial_placement
from tests.backends.kuberay_fixtures import RAYCLUSTER_CRD, crd_violations, settings, stored
from tests.builders import experiment, sweep

UID = "99999999-2222-3333-4444-555555555555"


def shared_sweep(parallelism: int = 3, **k8s: Any) -> Sweep:
    body = (
        sweep("grid", namespace="team-a")
        .template("resources", {"envRunners": 2, "cpusPerRunner": 1, "memory": "2Gi"})
        .template("placement", {"backend": "kubernetes"})
        .set("spec.parallelism", parallelism)
        .set("spec.placement", {"kubernetes": {"sharedCluster": True, **k8s}})
        .obj()
    )
    body["metadata"]["uid"] = UID
    return Sweep.model_validate(body)


def trial_spec(s: Sweep) -> RLExperimentSpec:
    """The template with the sweep's placement merged in, as the operator renders a trial."""
    placement = trial_placement(s.spec, s.spec.template.placement, Backend.KUBERNETES)
    return s.spec.template.model_copy(update={"placement": placement})


def head(cluster: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][
        0
    ]
    return container


def test_the_cluster_holds_parallelism_trials_and_is_owned_by_the_sweep() -> None:
    s = shared_sweep(parallelism=3)
    cluster = build_shared_cluster(s, trial_spec(s), settings())
    meta = cluster["metadata"]
    assert (cluster["kind"], meta["name"], meta["namespace"]) == (
        "RayCluster",
        "grid-ray",
        "team-a",
    )
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Sweep", "grid", UID)
    # One trial: its driver (1 CPU) and 2 runners (1 CPU each) on one node, 2Gi; three at once.
    resources = head(cluster)["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "9", "memory": str(6 * 2**30)}
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "9"
    assert "workerGroupSpecs" not in cluster["spec"]
    assert cluster["spec"]["authOptions"] == {"mode": "token"}
    assert TOKEN_ENV not in {e["name"] for e in head(cluster).get("env") or []}
    assert "suspend" not in cluster["spec"] and "kueue.x-k8s.io/queue-name" not in meta["labels"]
    assert crd_violations(cluster, RAYCLUSTER_CRD) == []


def test_multi_node_trials_multiply_the_worker_group() -> None:
    s = shared_sweep(parallelism=2)
    template = s.spec.template.model_copy(deep=True)
    template.resources.nodes = 3
    template.resources.env_runners = 5
    cluster = build_shared_cluster(
        s,
        trial_spec(s.model_copy(update={"spec": s.spec.model_copy(update={"template": template})})),
        settings(),
    )
    (group,) = cluster["spec"]["workerGroupSpecs"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 2 * 2
    assert head(cluster)["resources"]["requests"]["cpu"] == "4"  # 2 x (6 CPUs / 3 nodes)
    assert crd_violations(cluster, RAYCLUSTER_CRD) == []


def test_kueue_admits_the_cluster_as_a_whole() -> None:
    s = shared_sweep(queue="research")
    cluster = build_shared_cluster(s, trial_spec(s), settings())
    assert cluster["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "research"
    assert cluster["spec"]["suspend"] is True
    assert crd_violations(cluster, RAYCLUSTER_CRD) == []


def trial(shared: bool = True, **k8s: Any) -> Any:
    body = (
        experiment("grid-0")
        .kubernetes(sharedCluster=shared, **k8s)
        .set("metadata.labels", {"rlops.dev/sweep": "grid", "rlops.dev/trial": "0"})
        .set("spec.stop", {"timesteps": 2000, "wallTimeSeconds": 600})
        .obj()
    )
    return stored(body)


def test_a_trial_runs_on_the_shared_cluster_with_a_cluster_selector() -> None:
    exp = trial(queue="research")
    job = build_rayjob(exp, settings(submission_mode="SidecarMode"))
    spec = job["spec"]
    assert spec["clusterSelector"] == {"ray.io/cluster": "grid-ray"}
    # What KubeRay v1.7's validation refuses with a clusterSelector is not there.
    assert "rayClusterSpec" not in spec and "suspend" not in spec
    assert spec["submissionMode"] == "K8sJobMode" and spec["submitterPodTemplate"]
    assert spec["backoffLimit"] == 0 and spec["shutdownAfterJobFinishes"] is False
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]
    assert spec["activeDeadlineSeconds"] >= 600  # the trial keeps its own deadline
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    meta = exp.metadata
    assert env[TOKEN_ENV] == progress_token("test-secret", meta.namespace, meta.name, meta.uid)
    assert crd_violations(job) == []
    # The runtime validates the manifest it is given: the sweep's label comes with it.
    b64 = spec["entrypoint"].split("--spec-b64 ")[1].split()[0]
    assert validate_manifest(json.loads(base64.b64decode(b64))) == []


def test_a_trial_without_the_setting_builds_its_own_cluster() -> None:
    spec = build_rayjob(trial(shared=False), settings())["spec"]
    assert "clusterSelector" not in spec and spec["rayClusterSpec"]
    assert TOKEN_ENV not in yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]


class Api:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def create(self, kind: Any, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(("create", body["kind"]))
        return True

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("apply", "Secret"))

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def delete(self, kind: Any, namespace: str, name: str) -> None:
        self.calls.append(("delete", kind.plural))


def test_submit_on_a_shared_cluster_creates_the_rayjob_alone() -> None:
    api = Api()
    KubeRayBackend(api, settings()).submit(Submission(trial(), 1, (), False))
    assert api.calls == [("create", "RayJob")]  # no progress Secret: the head is shared
    api.calls.clear()
    KubeRayBackend(api, settings()).submit(Submission(trial(shared=False), 1, (), False))
    assert api.calls == [("apply", "Secret"), ("create", "RayJob")]
    assert RAYCLUSTERS.plural == "rayclusters"


def errors_of(manifest: dict[str, Any]) -> dict[str, str]:
    return {e.path: e.message for e in validate_manifest(manifest)}


def shared_error(**placement: Any) -> str:
    """The error on sharedCluster of a sweep placed so (with a SLURM cluster named)."""
    body = sweep("grid").set("spec.placement", {
        "slurm": {"cluster": "hpc"}, "kubernetes": {"sharedCluster": True, "maxParallel": 2},
        **placement,
    })  # fmt: skip
    return errors_of(body.obj())["spec.placement.kubernetes.sharedCluster"]


def test_only_a_kubernetes_sweep_shares_a_cluster() -> None:
    base = sweep("grid").template("placement", {"backend": "kubernetes"})
    on_kubernetes = base.set("spec.placement", {"kubernetes": {"sharedCluster": True}})
    assert errors_of(on_kubernetes.obj()) == {}
    assert "only for trials on Kubernetes" in shared_error(backend="slurm")
    assert "burst" in shared_error(backend="burst")
    in_template = base.template("placement.kubernetes", {"sharedCluster": True}).obj()
    assert (
        "set it on the Sweep"
        in errors_of(in_template)["spec.template.placement.kubernetes.sharedCluster"]
    )


def test_a_lone_experiment_cannot_ask_for_a_shared_cluster() -> None:
    lone = experiment("solo").kubernetes(sharedCluster=True).obj()
    message = errors_of(lone)["spec.placement.kubernetes.sharedCluster"]
    assert "only a Sweep's trials share a RayCluster" in message
    as_trial = (
        experiment("grid-0")
        .kubernetes(sharedCluster=True)
        .set("metadata.labels", {"rlops.dev/sweep": "grid"})
    )
    assert errors_of(as_trial.obj()) == {}
