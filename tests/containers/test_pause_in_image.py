"""A paused RLExperiment checkpoints at the pause, in the image: `rlops operator` (a real
process) runs the experiment as a RayJob whose head pod the KubeRay stand-in runs as a podman
container, in a namespace that enforces Pod Security `restricted`; the entrypoint is
submitted through the head's dashboard (Ray's job API) by the rendered submitter pod, as
KubeRay's K8sJobMode does, at the head's address, with the token of KubeRay's
`authOptions: {mode: token}` (the dashboard refuses requests without it). The pause
annotation makes the operator delete the RayJob; the stand-in stops the Ray job through the
job API first (with the token, from outside the head pod), as KubeRay does for a RayJob being
deleted, so Ray's job supervisor SIGTERMs the driver, which finishes its
iteration and checkpoints before the pod goes. The experiment checkpoints nowhere else before
its end (`checkpoint.frequency: 0`), so the resumed run going on from the last iteration
before the pause shows the pause's checkpoint.

Real: the operator, podman, the image, Ray's dashboard and job supervisor, `ray job submit`,
RLlib. The Kubernetes API is the test bed's emulator; the KubeRay operator is the stand-in.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from rlops.api.runinfo import read_progress, read_result
from tests.builders import experiment
from tests.kube.fixtures import KubeTestBed
from tests.kube.kuberay_pods import auth_headers
from tests.operator.harness import OperatorProcess, get, status_of
from tests.operator.test_operator_e2e import apply, tiny_training
from tests.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.training]

RESUMED = re.compile(r"resuming from \S+ \(iteration (\d+)\)")


def job_api(url: str, token: str | None) -> tuple[int, str | None]:
    """GET a job from Ray's job API as KubeRay's dashboard client does: HTTP status, job's."""
    try:
        request = urllib.request.Request(url, headers=auth_headers(token))
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())["status"]
    except urllib.error.HTTPError as refused:
        return refused.code, None


def test_a_paused_trial_checkpoints_at_the_pause_and_resumes_from_there(
    kube: KubeTestBed, kube_namespace: str, kuberay: Any, pod_operator: OperatorProcess
) -> None:
    ns, name = kube_namespace, "nap"
    run_dir = pod_operator.workdir / "runs" / ns / name
    manifest = (
        tiny_training(experiment(name))
        .set("spec.checkpoint", {"frequency": 0})
        .stop(iterations=200)
        .kubernetes()
        .obj()
    )
    # The namespace enforces Pod Security `restricted`, as docs/install/namespace.yaml's does:
    # the RayJob's pods as KubeRay makes them (no submitter container of KubeRay's in the head
    # pod, the rendered submitter pod) pass it.
    kube.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
                 check=True)  # fmt: skip
    started = time.monotonic()
    apply(kube, ns, manifest)

    def iteration() -> int:
        return int((status_of(kube, "rlx", ns, name).get("progress") or {}).get("iteration", 0))

    wait_until(lambda: iteration() >= 2, 600, "two iterations", interval=1.0)
    rayjob = get(kube, "rayjobs", ns, name)
    assert rayjob is not None and rayjob["spec"]["submissionMode"] == "K8sJobMode"
    assert rayjob["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token"}
    assert rayjob["status"]["jobStatus"] == "RUNNING"  # read from Ray's job API
    # The head's real dashboard answers its job API at the head's address only with KubeRay's
    # token, which the stand-in keeps in KubeRay's Secret of the RayCluster.
    pod_set = kuberay.ray_pods(ns, name)
    secret = get(kube, "secrets", ns, rayjob["status"]["rayClusterName"])
    assert secret is not None
    assert base64.b64decode(secret["data"]["auth_token"]).decode() == pod_set.auth_token
    url = f"{pod_set.dashboard}/api/jobs/{rayjob['status']['jobId']}"
    assert job_api(url, None)[0] == 401 and job_api(url, "wrong")[0] in (401, 403)
    assert job_api(url, pod_set.auth_token) == (200, "RUNNING")
    submitted = kuberay.driver_log(ns, name)  # the submitter container's output
    assert f"Job '{rayjob['status']['jobId']}' submitted successfully" in submitted, submitted
    paused_at = time.monotonic()
    kube.kubectl("annotate", "rlx", name, "-n", ns, "rlops.dev/pause=test", check=True)
    wait_until(lambda: get(kube, "rayjobs", ns, name) is None, 120, "the RayJob to go")
    assert status_of(kube, "rlx", ns, name)["phase"] == "Paused"
    gone = time.monotonic()

    result = read_result(run_dir)
    assert result is not None and result.status == "requeue", result
    assert "SIGTERM received; checkpointed" in result.message
    before = [r.iteration for r in read_progress(run_dir)]
    assert result.iteration == before[-1] >= 2  # the checkpoint of the last iteration run

    resume = ("rlops.dev/pause-", "rlops.dev/promotions=1")
    kube.kubectl("annotate", "rlx", name, "-n", ns, *resume, check=True)
    log = run_dir / "attempts" / "2.log"

    def resumed() -> int | None:
        found = RESUMED.search(log.read_text()) if log.exists() else None
        return int(found.group(1)) if found else None

    start = wait_until(resumed, 600, "the second launch to resume", interval=1.0)
    assert start == before[-1], (start, before)
    again = wait_until(
        lambda: [r for r in read_progress(run_dir) if r.attempt == 2], 300, "an iteration"
    )
    assert again[0].iteration == start + 1
    print(f"\npause in containers: {before[-1]} iterations in {paused_at - started:.0f} s; "
          f"the RayJob gone {gone - paused_at:.1f} s after the pause; resumed at "
          f"{start + 1}")  # fmt: skip
