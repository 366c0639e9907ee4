"""Storage on the KubeRay backend: one rule for the claim and where it is mounted.

- `spec.storage.persistentVolumeClaim` is mounted at `spec.storage.path` in the head, worker
  and submitter pods, and the run directory lies under it;
- the spec's claim wins over the operator's (`RLOPS_STORAGE_CLAIM`), which is mounted at the
  spec's path when the spec gives a path only;
- an `s3://` path mounts nothing and is the runtime's `--run-dir`; the operator's storage
  Secret gives its pods the S3 variables (each key optional), and only to those;
- the validator refuses a bad claim name, a claim with an object-store path, and a store
  scheme other than s3:// and gs://, naming the field.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from rlops.api.validation import validate_manifest
from rlops.backends.kuberay import build_rayjob
from rlops.backends.kuberay.builder import JOB_STOP_WAIT, STORE_VARIABLES
from tests.backends.kuberay_fixtures import crd_violations, settings, stored
from tests.builders import experiment

CLAIM = {"name": "rlops-storage", "persistentVolumeClaim": {"claimName": "team-runs"}}


def pods(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The head, worker and submitter pod specs of a RayJob."""
    cluster = job["spec"]["rayClusterSpec"]
    found = [cluster["headGroupSpec"]["template"]["spec"]]
    found += [g["template"]["spec"] for g in cluster.get("workerGroupSpecs", [])]
    if "submitterPodTemplate" in job["spec"]:
        found.append(job["spec"]["submitterPodTemplate"]["spec"])
    return found


def run_dir_of(job: dict[str, Any]) -> str:
    argv = shlex.split(job["spec"]["entrypoint"])
    return argv[argv.index("--run-dir") + 1]


def two_nodes(storage: dict[str, Any]) -> dict[str, Any]:
    return (
        experiment("multi")
        .set("spec.resources", {"envRunners": 4, "nodes": 2})
        .set("spec.storage", storage)
        .kubernetes()
        .obj()
    )


def test_the_spec_claim_is_mounted_at_the_spec_path_in_every_pod() -> None:
    exp = two_nodes({"path": "/mnt/runs", "persistentVolumeClaim": "team-runs"})
    job = build_rayjob(stored(exp), settings(storage_claim="operator-runs"))
    assert len(pods(job)) == 3  # head, worker, submitter
    for pod in pods(job):
        assert pod["volumes"] == [CLAIM]
        assert pod["containers"][0]["volumeMounts"] == [
            {"name": "rlops-storage", "mountPath": "/mnt/runs"}
        ]
    assert run_dir_of(job) == "/mnt/runs/team-a/multi"
    submitter = job["spec"]["submitterPodTemplate"]["spec"]
    assert submitter["restartPolicy"] == "Never" and "command" not in submitter["containers"][0]
    assert crd_violations(job) == []


def test_a_spec_claim_without_a_path_is_mounted_at_the_operator_storage_path() -> None:
    job = build_rayjob(stored(two_nodes({"persistentVolumeClaim": "team-runs"})), settings())
    for pod in pods(job):
        assert pod["volumes"] == [CLAIM]
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/data/rlops"
    assert run_dir_of(job) == "/data/rlops/team-a/multi"


def test_the_operator_claim_follows_the_spec_path() -> None:
    job = build_rayjob(stored(two_nodes({"path": "/mnt/runs"})), settings(storage_claim="ops"))
    for pod in pods(job):
        assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "ops"}
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/mnt/runs"


def test_an_object_store_path_mounts_nothing() -> None:
    exp = two_nodes({"path": "s3://bucket/runs"})
    job = build_rayjob(stored(exp), settings(storage_claim="operator-runs"))
    assert len(pods(job)) == 3  # head, worker, submitter
    for pod in pods(job):
        assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]
    assert run_dir_of(job) == "s3://bucket/runs/team-a/multi"


def test_the_storage_secret_gives_object_store_pods_their_credentials() -> None:
    ops = settings(storage_secret="bucket-creds")
    job = build_rayjob(stored(two_nodes({"path": "s3://bucket/runs"})), ops)
    for pod in pods(job):
        env = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in pod["containers"][0]["env"]
            if e["name"] not in ("RLOPS_PROGRESS_TOKEN", JOB_STOP_WAIT["name"])
        }  # the head's own token, from its Secret, and Ray's job stop wait
        assert sorted(env) == sorted(STORE_VARIABLES)
        assert env["AWS_ENDPOINT_URL"] == {
            "name": "bucket-creds",
            "key": "AWS_ENDPOINT_URL",
            "optional": True,
        }
    assert crd_violations(job) == []
    on_a_claim = build_rayjob(stored(two_nodes({"path": "/mnt/runs"})), ops)
    for pod in pods(on_a_claim):  # no store variables (the head keeps its own two)
        names = {e["name"] for e in pod["containers"][0].get("env", [])}
        assert names <= {"RLOPS_PROGRESS_TOKEN", JOB_STOP_WAIT["name"]}


def test_no_claim_no_volume_in_any_pod() -> None:
    job = build_rayjob(stored(two_nodes({"path": "/mnt/runs"})), settings())
    assert len(pods(job)) == 3  # head, worker, submitter
    assert all("volumes" not in pod for pod in pods(job))


@pytest.mark.parametrize(
    ("storage", "field", "message"),
    [
        ({"persistentVolumeClaim": "Team_Runs"}, "persistentVolumeClaim", "DNS subdomain"),
        (
            {"path": "s3://b/p", "persistentVolumeClaim": "runs"},
            "persistentVolumeClaim",
            "must be absolute",
        ),
        ({"path": "ftp://host/runs"}, "path", "ftp:// is not a supported store"),
        ({"path": "s3:///runs"}, "path", "expected s3://<bucket>"),
    ],
)
def test_the_validator_names_the_storage_field(
    storage: dict[str, Any], field: str, message: str
) -> None:
    errors = validate_manifest(experiment("x").set("spec.storage", storage).kubernetes().obj())
    assert [e.path for e in errors] == [f"spec.storage.{field}"], errors
    assert message in errors[0].message


@pytest.mark.parametrize("path", ["s3://bucket", "s3://bucket/a/b", "gs://bucket/runs", "/mnt/x"])
def test_paths_and_store_uris_are_accepted(path: str) -> None:
    assert validate_manifest(experiment("x").set("spec.storage", {"path": path}).obj()) == []
