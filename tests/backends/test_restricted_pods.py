"""Every pod the RayJob builder renders (head, workers, the K8sJobMode submitter) meets Pod
Security `restricted`, checked by the Pod Security Standards' rules (tests/kube/podsecurity.py),
and mounts no service-account token unless the experiment names a ServiceAccount. On the test
bed, a namespace that enforces `restricted` refuses a non-conforming Pod or RayJob with the
API server's 403 and accepts rlops's RayJobs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from rlops.backends.kuberay import build_rayjob
from tests.backends.kuberay_fixtures import settings, stored
from tests.builders import experiment
from tests.kube.fixtures import KubeTestBed
from tests.kube.podsecurity import ENFORCE, rayjob_pods, violations

EXPERIMENTS: dict[str, dict[str, Any]] = {
    "single-node": experiment("one").kubernetes().obj(),
    "multi-node": experiment("many")
    .set("spec.resources", {"envRunners": 4, "nodes": 3})
    .kubernetes(nodeSelector={"pool": "cpu"})
    .obj(),
    "service-account": experiment("sa").kubernetes(serviceAccount="trainer").obj(),
}


def rendered(name: str, **overrides: Any) -> dict[str, Any]:
    return build_rayjob(stored(EXPERIMENTS[name]), settings(storage_claim="runs", **overrides))


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_rendered_pod_meets_restricted(name: str) -> None:
    pods = list(rayjob_pods(rendered(name)))
    roles = [role for role, _ in pods]
    assert roles[0] == "head" and roles[-1] == "submitter"  # K8sJobMode: a submitter pod
    if name == "multi-node":
        assert roles == ["head", "workers workers", "submitter"]
    for role, pod in pods:
        assert violations(pod) == [], role
        assert [c["name"] for c in pod["containers"]] == [
            {"head": "ray-head", "submitter": "ray-job-submitter"}.get(role, "ray-worker")
        ]  # KubeRay adds no container of its own to the head pod
        wanted = EXPERIMENTS[name]["spec"]["placement"]["kubernetes"].get("serviceAccount")
        if wanted:
            assert pod["serviceAccountName"] == wanted
            assert "automountServiceAccountToken" not in pod
        else:
            assert pod["automountServiceAccountToken"] is False
            assert "serviceAccountName" not in pod


def test_the_checker_finds_each_restricted_rule_broken() -> None:
    pod = rendered("single-node")["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    bare = {"containers": [{"name": "ray-head", "image": "x"}]}
    found = " | ".join(violations(bare))
    for rule in ("allowPrivilegeEscalation != false", "unrestricted capabilities",
                 "runAsNonRoot != true", "seccompProfile"):  # fmt: skip
        assert rule in found
    broken = copy.deepcopy(pod)
    broken["containers"][0]["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
    broken["securityContext"]["runAsUser"] = 0
    broken["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
    broken["hostNetwork"] = True
    found = " | ".join(violations(broken))
    for rule in ("non-default capabilities", "runAsUser=0", "hostPath volumes",
                 "restricted volume types", "host namespaces"):  # fmt: skip
        assert rule in found
    assert violations(bare, "privileged") == []
    assert violations(bare, "baseline") == []


@pytest.fixture
def restricted_ns(kube: KubeTestBed, kube_namespace: str) -> Iterator[str]:
    with kube.api_client() as api:
        patch = {"metadata": {"labels": {ENFORCE: "restricted"}}}
        kubernetes.client.CoreV1Api(api).patch_namespace(kube_namespace, patch)
    yield kube_namespace


def test_a_restricted_namespace_refuses_what_breaks_the_profile(
    kube: KubeTestBed, restricted_ns: str
) -> None:
    if not kube.emulated:
        pytest.skip("RayJob pod templates are checked at create time only on the test bed")
    job = rendered("multi-node")
    job["metadata"]["namespace"] = restricted_ns
    with kube.api_client() as api:
        custom = kubernetes.client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object("ray.io", "v1", restricted_ns, "rayjobs", job)
        bad = copy.deepcopy(job)
        bad["metadata"]["name"] = "loose"
        del bad["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"][
            "containers"][0]["securityContext"]  # fmt: skip
        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object("ray.io", "v1", restricted_ns, "rayjobs", bad)
        assert refused.value.status == 403
        status = json.loads(refused.value.body)
        assert status["reason"] == "Forbidden"
        assert status["message"].startswith(
            'rayjobs.ray.io "loose" is forbidden: violates PodSecurity "restricted:latest": '
            'workers workers: allowPrivilegeEscalation != false (container "ray-worker"'
        )
        core = kubernetes.client.CoreV1Api(api)
        head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
        pod = {"metadata": {"name": "head"}, "spec": head}
        core.create_namespaced_pod(restricted_ns, pod)
        with pytest.raises(ApiException) as refused:
            loose = {
                "metadata": {"name": "loose"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
            core.create_namespaced_pod(restricted_ns, loose)
        assert refused.value.status == 403
        assert (
            'pods "loose" is forbidden: violates PodSecurity "restricted:latest"'
            in (json.loads(refused.value.body)["message"])
        )


def test_kuberay_s_own_submitter_breaks_restricted_in_sidecar_mode() -> None:
    """KubeRay v1.7 appends its `ray-job-submitter` container, without a securityContext, to
    the head pod in SidecarMode, and uses a bare default submitter pod in K8sJobMode without
    `submitterPodTemplate`: both break `restricted`; rlops's K8sJobMode rendering does not."""
    sidecar = rendered("single-node", submission_mode="SidecarMode")
    head = dict(rayjob_pods(sidecar))["head"]
    assert [c["name"] for c in head["containers"]] == ["ray-head", "ray-job-submitter"]
    found = " | ".join(violations(head))
    assert 'allowPrivilegeEscalation != false (container "ray-job-submitter"' in found
    assert "ray-head" not in found
    bare = rendered("single-node")
    del bare["spec"]["submitterPodTemplate"]
    assert 'container "ray-job-submitter"' in " | ".join(
        violations(dict(rayjob_pods(bare))["submitter"])
    )
    http = rendered("single-node", submission_mode="HTTPMode")
    assert [role for role, _ in rayjob_pods(http)] == ["head"]
    assert all(violations(pod) == [] for _, pod in rayjob_pods(http))


def test_a_restricted_namespace_refuses_sidecar_mode_and_accepts_k8s_job_mode(
    kube: KubeTestBed, restricted_ns: str
) -> None:
    if not kube.emulated:
        pytest.skip("RayJob pod templates are checked at create time only on the test bed")
    with kube.api_client() as api:
        custom = kubernetes.client.CustomObjectsApi(api)
        sidecar = rendered("single-node", submission_mode="SidecarMode")
        sidecar["metadata"]["namespace"] = restricted_ns
        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object(
                "ray.io", "v1", restricted_ns, "rayjobs", sidecar
            )
        assert refused.value.status == 403
        assert json.loads(refused.value.body)["message"].startswith(
            'rayjobs.ray.io "one" is forbidden: violates PodSecurity "restricted:latest": '
            'head: allowPrivilegeEscalation != false (container "ray-job-submitter"'
        )
        job = rendered("single-node")
        job["metadata"]["namespace"] = restricted_ns
        assert job["spec"]["submissionMode"] == "K8sJobMode"
        created = custom.create_namespaced_custom_object(
            "ray.io", "v1", restricted_ns, "rayjobs", job
        )
        assert created["metadata"]["name"] == "one"
