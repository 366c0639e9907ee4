"""The RayJob builder: golden files of representative experiments, KubeRay's real CRD schema
(v1.7.0) accepting every rendered RayJob, and the sizing, deadline and Kueue rules one by one.

Regenerate the golden files on purpose with `pytest tests/backends --update-golden`.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rlops.backends.kuberay import build_rayjob, progress_secret, progress_token
from rlops.backends.kuberay.builder import JOB_STOP_WAIT
from tests.backends.kuberay_fixtures import crd_violations, settings, stored
from tests.builders import experiment
from tests.golden import Golden

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, dict[str, Any]] = {
    "cpu-single-node": experiment("cartpole").kubernetes().obj(),
    "gpu-multi-node": (
        experiment("atari-impala")
        .algorithm("IMPALA")
        .set("spec.resources", {
            "envRunners": 14, "cpusPerRunner": 1, "learners": 2, "gpusPerLearner": 1,
            "nodes": 2, "memory": "32Gi",
        })
        .kubernetes()
        .obj()
    ),
    "kueue-placement": (
        experiment("queued", namespace="team-b")
        .set("spec.image", "registry.example.com/rl/custom:2024.1")
        .set("spec.stop", {"timesteps": 100000, "wallTimeSeconds": 3600.5})
        .set("spec.storage", {"path": "s3://bucket/runs"})
        .set("spec.resources", {"envRunners": 2, "cpusPerRunner": 0.5})
        .kubernetes(
            queue="research",
            nodeSelector={"pool": "cpu"},
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "rl",
                          "effect": "NoSchedule"}],
            serviceAccount="trainer",
            ttlSecondsAfterFinished=60,
            preRunningDeadlineSeconds=300,
        )
        .set("metadata.labels", {"rlops.dev/sweep": "grid", "rlops.dev/trial": "3", "team": "b"})
        .obj()
    ),
}  # fmt: skip


def render(name: str) -> dict[str, Any]:
    return build_rayjob(stored(CASES[name]), settings())


@pytest.mark.parametrize("name", sorted(CASES))
def test_rayjob_matches_golden_file(name: str, golden: Golden) -> None:
    text = yaml.safe_dump(render(name), sort_keys=False, width=100)
    golden.check(GOLDEN / f"rayjob-{name}.yaml", text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rayjob_validates_against_kuberay_crd(name: str) -> None:
    assert crd_violations(render(name)) == []


def test_schema_check_catches_what_kuberay_rejects() -> None:
    """The schema check itself is real: an unknown field and a wrong type are both reported."""
    rayjob = render("cpu-single-node")
    rayjob["spec"]["shutdownAfterJobFinish"] = True
    rayjob["spec"]["ttlSecondsAfterFinished"] = "soon"
    problems = crd_violations(rayjob)
    assert any("shutdownAfterJobFinish" in p and "unknown" in p for p in problems)
    assert any("ttlSecondsAfterFinished" in p for p in problems)


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

resources = st.fixed_dictionaries(
    {
        "envRunners": st.integers(0, 64),
        "cpusPerRunner": st.sampled_from([0.25, 0.5, 1, 1.5, 2, 4]),
        "learners": st.integers(0, 8),
        "gpusPerLearner": st.sampled_from([0, 0, 0.25, 0.5, 1, 2]),
        "driverCpus": st.sampled_from([0.5, 1, 2]),
        "nodes": st.integers(1, 8),
    },
    optional={"memory": st.sampled_from(["512Mi", "4Gi", "1.5Gi", "64G"])},
)
placements = st.fixed_dictionaries(
    {},
    optional={
        "queue": st.sampled_from(["q", "team-queue"]),
        "nodeSelector": st.dictionaries(
            st.sampled_from(["pool", "zone"]), st.just("a"), max_size=2
        ),
        "serviceAccount": st.just("sa"),
        "ttlSecondsAfterFinished": st.integers(0, 86400),
        "preRunningDeadlineSeconds": st.integers(1, 86400),
    },
)
stops = st.fixed_dictionaries(
    {"timesteps": st.integers(1, 10**9)},
    optional={"wallTimeSeconds": st.floats(1, 10**6), "iterations": st.integers(1, 10**5)},
)


@hsettings(max_examples=60, deadline=None)
@given(resources=resources, placement=placements, stop=stops, name=st.from_regex(
    r"\A[a-z]([-a-z0-9]{0,45}[a-z0-9])?\Z"))  # fmt: skip
def test_every_rendered_rayjob_is_valid(
    resources: dict[str, Any], placement: dict[str, Any], stop: dict[str, Any], name: str
) -> None:
    manifest = (
        experiment(name).set("spec.resources", resources).set("spec.stop", stop)
        .kubernetes(**placement).obj()
    )  # fmt: skip
    rayjob = build_rayjob(stored(manifest), settings())
    assert crd_violations(rayjob) == []
    for key, value in rayjob["metadata"]["labels"].items():
        assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)


def test_one_head_and_nodes_minus_one_workers_share_the_resources() -> None:
    rayjob = render("gpu-multi-node")
    cluster = rayjob["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    (workers,) = cluster["workerGroupSpecs"]
    worker = workers["template"]["spec"]["containers"][0]
    # 14 runners x 1 CPU + 1 driver CPU = 15 CPUs and 2 GPUs over 2 nodes.
    expected = {"cpu": "7500m", "memory": "32Gi", "nvidia.com/gpu": "1"}
    assert head["resources"] == {"requests": expected, "limits": expected}
    assert worker["resources"] == head["resources"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 1
    assert cluster["headGroupSpec"]["rayStartParams"]["num-gpus"] == "1"
    # The driver keeps its CPU on the head; the worker offers the rest of the 14 runner slots.
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "6"
    assert workers["rayStartParams"]["num-cpus"] == "8"


@pytest.mark.parametrize(
    ("resources", "head", "worker"),
    [({"envRunners": 1, "nodes": 2}, "0", "1"), ({"envRunners": 2, "nodes": 2}, "0", "2"),
     ({"envRunners": 2, "nodes": 3}, "0", "1"), ({"envRunners": 3}, "4", None)],
)  # fmt: skip
def test_the_env_runners_fit_the_ray_cpus_of_the_nodes(
    resources: dict[str, Any], head: str, worker: str | None
) -> None:
    exp = experiment("x").set("spec.resources", resources).kubernetes().obj()
    cluster = build_rayjob(stored(exp), settings())["spec"]["rayClusterSpec"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == head
    groups = cluster.get("workerGroupSpecs") or []
    assert [g["rayStartParams"]["num-cpus"] for g in groups] == ([worker] if worker else [])
    slots = int(head) + sum(int(g["rayStartParams"]["num-cpus"]) * g["replicas"] for g in groups)
    assert slots >= resources["envRunners"]


def test_single_node_has_no_worker_group_and_no_gpu() -> None:
    cluster = render("cpu-single-node")["spec"]["rayClusterSpec"]
    assert "workerGroupSpecs" not in cluster
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]


def test_entrypoint_runs_the_runtime_on_the_experiment() -> None:
    exp = stored(CASES["kueue-placement"])
    argv = shlex.split(build_rayjob(exp, settings())["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "rlops.runtime"]
    manifest = json.loads(base64.b64decode(argv[argv.index("--spec-b64") + 1]))
    assert manifest["metadata"] == {"name": "queued", "namespace": "team-b"}
    assert manifest["spec"] == exp.spec.dump()
    assert argv[argv.index("--run-dir") + 1] == "s3://bucket/runs/team-b/queued"


def test_kueue_queue_suspends_and_labels_the_rayjob() -> None:
    rayjob = render("kueue-placement")
    assert rayjob["spec"]["suspend"] is True
    assert rayjob["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "research"
    assert "suspend" not in render("cpu-single-node")["spec"]


def test_deadlines_ttl_and_shutdown() -> None:
    spec = render("kueue-placement")["spec"]
    assert spec["activeDeadlineSeconds"] == 3601 + 600  # wall time rounded up + margin
    assert spec["ttlSecondsAfterFinished"] == 60
    assert spec["preRunningDeadlineSeconds"] == 300
    assert spec["shutdownAfterJobFinishes"] is True
    assert "activeDeadlineSeconds" not in render("cpu-single-node")["spec"]


def test_owned_by_and_labelled_with_its_experiment() -> None:
    exp = stored(CASES["kueue-placement"])
    rayjob = build_rayjob(exp, settings(), attempt=3)
    (owner,) = rayjob["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "rlops.dev/v1alpha1", "kind": "RLExperiment", "name": "queued",
        "uid": exp.metadata.uid, "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    labels = rayjob["metadata"]["labels"]
    assert labels["rlops.dev/experiment"] == "queued"
    assert labels["rlops.dev/attempt"] == "3"
    assert labels["rlops.dev/sweep"] == "grid" and "team" not in labels
    assert rayjob["metadata"]["name"] == "queued"


def test_the_token_is_in_the_experiments_secret_and_nowhere_in_the_rayjob() -> None:
    exp = stored(CASES["cpu-single-node"], uid="u-1")
    job = build_rayjob(exp, settings())
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    assert env["RLOPS_PROGRESS_URL"] == (
        "http://rlops-operator.rlops-system.svc:8081/progress/team-a/cartpole"
    )
    token = progress_token("test-secret", "team-a", "cartpole", "u-1")
    assert token not in json.dumps(job) and "RLOPS_PROGRESS_TOKEN" not in env
    secret = progress_secret(exp, settings())
    assert base64.b64decode(secret["data"]["token"]).decode() == token
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "RLExperiment"
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    ref = {"name": secret["metadata"]["name"], "key": "token"}
    token_env = {"name": "RLOPS_PROGRESS_TOKEN", "valueFrom": {"secretKeyRef": ref}}
    assert head["env"] == [token_env, JOB_STOP_WAIT]
    other = progress_secret(stored(CASES["cpu-single-node"], uid="u-2"), settings())
    assert other["data"] != secret["data"]  # a recreated experiment gets a new token


def test_the_dashboard_is_reachable_with_kuberay_s_token_and_a_submitter_pod() -> None:
    job = build_rayjob(stored(CASES["cpu-single-node"]), settings())["spec"]
    cluster = job["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}  # KubeRay's token Secret and env
    assert cluster["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    assert job["submissionMode"] == "K8sJobMode"
    submitter = job["submitterPodTemplate"]["spec"]
    assert submitter["restartPolicy"] == "Never"
    assert [c["name"] for c in submitter["containers"]] == ["ray-job-submitter"]
    assert "command" not in submitter["containers"][0]  # KubeRay writes `ray job submit`
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "restartPolicy" not in head
    http = build_rayjob(stored(CASES["cpu-single-node"]), settings(submission_mode="HTTPMode"))
    assert http["spec"]["submissionMode"] == "HTTPMode"
    assert "submitterPodTemplate" not in http["spec"]
    sidecar = build_rayjob(
        stored(CASES["cpu-single-node"]), settings(submission_mode="SidecarMode")
    )["spec"]
    assert sidecar["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["restartPolicy"] == (
        "Never"
    )  # as KubeRay's SidecarMode requires


def test_expose_dashboard_is_retired_with_a_clear_message() -> None:
    from pydantic import ValidationError

    from rlops.api import RLExperiment

    manifest = experiment("open").kubernetes(exposeDashboard=True).obj()
    with pytest.raises(ValidationError) as refused:
        RLExperiment.model_validate(manifest)
    error = refused.value.errors()[0]
    assert error["loc"][-1] == "exposeDashboard"
    assert "is retired" in error["msg"] and "authOptions token" in error["msg"]


def test_a_rayjob_needs_a_stored_experiment() -> None:
    manifest = experiment("x").kubernetes().obj()
    from rlops.api import RLExperiment

    with pytest.raises(ValueError, match="uid"):
        build_rayjob(RLExperiment.model_validate(manifest), settings())


def test_a_storage_claim_is_mounted_at_the_storage_path_in_every_ray_pod() -> None:
    exp = experiment("multi").set("spec.resources", {"envRunners": 4, "nodes": 2}).obj()
    job = build_rayjob(stored(exp), settings(storage_claim="rlops-runs"))
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    assert len(pods) == 2
    for pod in pods:
        assert pod["volumes"] == [
            {"name": "rlops-storage", "persistentVolumeClaim": {"claimName": "rlops-runs"}}
        ]
        assert pod["containers"][0]["volumeMounts"] == [
            {"name": "rlops-storage", "mountPath": "/data/rlops"}
        ]
    assert crd_violations(job) == []
    without = build_rayjob(stored(exp), settings())["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert "volumes" not in without["template"]["spec"]


def test_the_operator_refuses_a_ray_too_old_for_kuberay_s_token_authentication() -> None:
    from pydantic import ValidationError

    from rlops.api.settings import Settings

    assert Settings(ray_version="2.52.0").ray_version == "2.52.0"
    with pytest.raises(ValidationError) as refused:
        Settings(ray_version="2.51.1")
    error = refused.value.errors()[0]
    assert error["loc"] == ("ray_version",) and "needs Ray 2.52.0 or later" in error["msg"]
