"""What the KubeRay stand-in does as KubeRay v1.7 does for a RayJob's submission mode and token
authentication (tests/kube/kuberay_pods.py, ray_jobs.py, ray_pods.py), without containers:

- the dashboard bound to the head pod's 127.0.0.1 listens where a container beside the head
  (SidecarMode) reaches it, and not at the head's address, where KubeRay's operator and a
  K8sJobMode submitter pod call it; `0.0.0.0` listens at the head's address;
- with `authOptions.mode: token` every Ray container and the submitter get `RAY_AUTH_MODE` and
  `RAY_AUTH_TOKEN` from KubeRay's token Secret (named after the cluster, key `auth_token`);
- the K8sJobMode submitter is the rendered `submitterPodTemplate` with KubeRay's command (check
  the status, submit `--no-wait`, follow the logs) at the head service's address; the
  SidecarMode one is KubeRay's bare container at the pod's loopback;
- the stand-in's own dashboard calls (job status, stop) send the token, and a dashboard it
  cannot reach or that refuses it fails the RayJob as KubeRay's operator does
  (JobStatusCheckTimeoutExceeded), while a stop leaves the job running;
- in HTTPMode the stand-in posts the job (with the token) while the dashboard does not know it.
The dashboard here is a small aiohttp server that answers Ray's job API only with the token.
"""

from __future__ import annotations

import asyncio
import base64
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rlops.backends.kuberay import build_rayjob
from tests.backends.kuberay_fixtures import settings, stored
from tests.builders import experiment
from tests.kube.kuberay_pods import auth_headers, auth_secret
from tests.kube.ray_jobs import SubmittedJob, submitter_pod
from tests.kube.ray_pods import cluster_pods, free_ports

TOKEN = "s3cret"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def rendered(mode: str = "K8sJobMode") -> dict[str, Any]:
    exp = experiment("one").kubernetes().obj()
    return build_rayjob(stored(exp), settings(submission_mode=mode))


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v.get("value", v.get("valueFrom")) for v in container.get("env") or []}


def test_a_loopback_dashboard_listens_only_where_the_head_pod_itself_reaches_it() -> None:
    spec = rendered()["spec"]["rayClusterSpec"]
    head = cluster_pods("c1", spec)[0][0]
    assert head.dashboard_host == head.ip  # 0.0.0.0: the pod's (and its service's) address
    args = shlex.split(head.spec["containers"][0]["args"][0].split("; ", 1)[1])
    assert f"--dashboard-host={head.ip}" in args
    spec["headGroupSpec"]["rayStartParams"]["dashboard-host"] = "127.0.0.1"
    head = cluster_pods("c2", spec)[0][0]
    assert head.dashboard_host == "127.0.0.1" != head.ip
    assert "--dashboard-host=127.0.0.1" in head.spec["containers"][0]["args"][0]


def test_every_ray_container_gets_kuberay_s_token_env_from_its_secret() -> None:
    spec = build_rayjob(
        stored(experiment("m").set("spec.resources", {"envRunners": 2, "nodes": 2}).obj()),
        settings(),
    )["spec"]["rayClusterSpec"]
    pods, _ = cluster_pods("m-abcde", spec)
    assert len(pods) == 2
    for pod in pods:
        env = env_of(pod.spec["containers"][0])
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN"] == {"secretKeyRef": {"name": "m-abcde", "key": "auth_token"}}
    cluster = {"metadata": {"name": "m-abcde", "uid": "u1"}, "spec": spec}
    secret = auth_secret(cluster)
    assert secret is not None and secret["metadata"]["name"] == "m-abcde"
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "RayCluster"
    token = base64.b64decode(secret["data"]["auth_token"])
    assert len(base64.b64decode(token)) == 32  # 32 random bytes, base64, as KubeRay makes it
    assert auth_secret({**cluster, "spec": {**spec, "authOptions": {"mode": "disabled"}}}) is None
    del spec["authOptions"]
    pods, _ = cluster_pods("m-fghij", spec)
    assert "RAY_AUTH_MODE" not in env_of(pods[0].spec["containers"][0])


def test_the_k8s_job_mode_submitter_is_the_rendered_pod_with_kuberay_s_command() -> None:
    spec = rendered()["spec"]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    pod = submitter_pod(spec, head, "one-abcde", "http://127.151.1.1:4321", "job-1", "K8sJobMode")
    container = pod["containers"][0]
    assert (
        container["securityContext"]
        == (spec["submitterPodTemplate"]["spec"]["containers"][0]["securityContext"])
    )
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    line = container["args"][0]
    assert "if ! ray job status --address http://127.151.1.1:4321 job-1 >/dev/null 2>&1" in line
    assert "ray job submit --address http://127.151.1.1:4321 --no-wait" in line
    assert line.endswith("ray job logs --address http://127.151.1.1:4321 --follow job-1")
    env = env_of(container)
    assert env["RAY_DASHBOARD_ADDRESS"] == "127.151.1.1:4321"
    assert env["RAY_JOB_SUBMISSION_ID"] == "job-1" and env["PYTHONUNBUFFERED"] == "1"
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN"]["secretKeyRef"] == {"name": "one-abcde", "key": "auth_token"}


def test_the_sidecar_submitter_is_kuberay_s_bare_container_at_the_pod_s_loopback() -> None:
    spec = rendered("SidecarMode")["spec"]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    pod = submitter_pod(spec, head, "one-abcde", "http://127.0.0.1:4321", "job-1", "SidecarMode")
    container = pod["containers"][0]
    assert container["name"] == "ray-job-submitter" and "securityContext" not in container
    assert (
        "ray job submit --address http://127.0.0.1:4321 --runtime-env-json"
        in (container["args"][0])
    )
    assert "--no-wait" not in container["args"][0]
    assert env_of(container)["RAY_AUTH_MODE"] == "token"


async def job_api(host: str) -> tuple[web.AppRunner, str]:
    """A dashboard whose job API answers only with the token, like Ray's with RAY_AUTH_MODE."""
    stopped: list[str] = []

    def authorised(request: web.Request) -> bool:
        return request.headers.get("x-ray-authorization") == f"Bearer {TOKEN}"

    async def get_job(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        status = "STOPPED" if stopped else "RUNNING"
        return web.json_response({"status": status, "message": "", "start_time": 1000})

    async def stop_job(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        stopped.append(request.match_info["job"])
        return web.json_response({"stopped": True})

    return await serve(host, get_job, ("/api/jobs/{job}/stop", stop_job))


async def serve(
    host: str, get_job: Handler, post: tuple[str, Handler]
) -> tuple[web.AppRunner, str]:
    """A job API at `host` on a free port: GET /api/jobs/<id> and one POST route."""
    app = web.Application()
    app.router.add_get("/api/jobs/{job}", get_job)
    app.router.add_post(*post)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_ports(1)[0]
    await web.TCPSite(runner, host, port).start()
    return runner, f"{port}"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_the_stand_in_reads_and_stops_the_job_with_the_token(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    runner, port = await job_api("127.151.250.1")
    try:
        dashboard = f"http://127.151.250.1:{port}"
        job = SubmittedJob("j", "c", dashboard, None, tmp_path, token=TOKEN)
        await job.refresh(session)
        assert job.job_status() == "RUNNING" and job.failing_since is None
        await job.stop(session, grace=5)
        assert job.job_status() == "STOPPED"
        anonymous = SubmittedJob("j", "c", dashboard, None, tmp_path)
        await anonymous.refresh(session)
        assert anonymous.info is None and anonymous.failing_since is not None  # 401
        assert auth_headers(None) == {}
    finally:
        await runner.cleanup()


async def test_a_dashboard_on_the_head_pod_s_loopback_fails_the_rayjob_as_kuberay_would(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    runner, port = await job_api("127.0.0.1")  # `dashboard-host: 127.0.0.1` of the head pod
    try:
        job = SubmittedJob("j", "c", f"http://127.151.250.1:{port}", None, tmp_path, token=TOKEN)
        await job.refresh(session)  # the head's address: nothing listens there
        assert job.info is None and job.failing_since is not None
        assert job.operator_failure(status_check_timeout=300) is None
        reason, message = job.operator_failure(status_check_timeout=0) or ("", "")
        assert reason == "JobStatusCheckTimeoutExceeded" and "exceeded timeout" in message
        await job.stop(session, grace=1)  # KubeRay's StopJob cannot reach it either
        local = SubmittedJob("j", "c", f"http://127.0.0.1:{port}", None, tmp_path, token=TOKEN)
        await local.refresh(session)
        assert local.job_status() == "RUNNING"  # never stopped
    finally:
        await runner.cleanup()


async def test_a_finished_submitter_whose_job_is_not_seen_ending_fails_the_rayjob(
    tmp_path: Path,
) -> None:
    finished = await asyncio.create_subprocess_exec("true")
    await finished.wait()
    job = SubmittedJob("j", "c", "http://127.151.250.1:1", finished, tmp_path, token=TOKEN)
    async with aiohttp.ClientSession() as client:
        await job.refresh(client)
    assert job.submitter_ended is not None
    job.submitter_ended -= 31  # KubeRay waits 30 s after the submitter finished
    reason, _ = job.operator_failure(status_check_timeout=300) or ("", "")
    assert reason == "JobDeploymentStatusTransitionGracePeriodExceeded"


async def test_http_mode_posts_the_job_with_the_token_until_the_dashboard_knows_it(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    posted: list[dict[str, Any]] = []

    async def get_job(request: web.Request) -> web.Response:
        if not posted:
            return web.json_response({}, status=404)
        return web.json_response({"status": "RUNNING"})

    async def submit(request: web.Request) -> web.Response:
        if request.headers.get("x-ray-authorization") != f"Bearer {TOKEN}":
            return web.json_response({}, status=401)
        posted.append(await request.json())
        return web.json_response({"submission_id": posted[-1]["submission_id"]})

    runner, port = await serve("127.151.250.1", get_job, ("/api/jobs/", submit))
    try:
        job = SubmittedJob("j", "c", f"http://127.151.250.1:{port}", None, tmp_path, token=TOKEN)
        spec = rendered("HTTPMode")["spec"]
        await job.refresh(session)
        assert job.info is None and job.failing_since is None  # 404: not known yet
        job.http_spec = spec
        await job.refresh(session)  # KubeRay posts it when the dashboard does not know it
        assert posted[0]["submission_id"] == "j"
        assert posted[0]["entrypoint"] == spec["entrypoint"]
        assert "RLOPS_PROGRESS_URL" in posted[0]["runtime_env"]["env_vars"]
        await job.refresh(session)
        assert job.job_status() == "RUNNING" and len(posted) == 1
    finally:
        await runner.cleanup()
