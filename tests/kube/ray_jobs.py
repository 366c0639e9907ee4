"""A RayJob's entrypoint submitted through Ray's job API, as KubeRay (v1.7) does in the KubeRay
stand-in's container mode.

The submission follows the RayJob's `submissionMode` (tests/kube/kuberay_pods.py), with the
command KubeRay generates (`BuildJobSubmitCommand`): wait until the dashboard answers
`/api/gcs_healthz`, then
- `SidecarMode`: a submitter container beside the head container (KubeRay's bare default
  container), `ray job submit --address http://127.0.0.1:<dashboard port> --runtime-env-json
  ... --submission-id <jobId> -- <entrypoint>`, which follows the job until it ends. In the
  stand-in the head pod's loopback is where its dashboard listens (tests/kube/ray_pods.py);
- `K8sJobMode`: the pod of `submitterPodTemplate` (or KubeRay's default) as a container of its
  own, addressing the head service's dashboard: `if ! ray job status ... ; then ray job submit
  ... --no-wait ... ; fi ; ray job logs --follow <jobId>`;
- `HTTPMode`: no submitter; the stand-in posts the job to the dashboard itself.
Every submitter gets KubeRay's env: `PYTHONUNBUFFERED`, `RAY_DASHBOARD_ADDRESS`,
`RAY_JOB_SUBMISSION_ID` and, with token authentication, `RAY_AUTH_MODE`/`RAY_AUTH_TOKEN` from
KubeRay's token Secret (Ray's CLI sends the token). A submitter that fails while the job has
not ended (e.g. when the head pod dies) fails the RayJob with reason SubmissionFailed.

Ray's job supervisor, an actor on the head node, then runs the entrypoint in the head
container. The RayJob's `jobStatus`, `message` and `rayJobInfo` come from the dashboard's job
API (`GET /api/jobs/<id>` at the head service's address, with the token as KubeRay's dashboard
client sends it), as KubeRay's operator reads them. When those reads fail (a dashboard bound to
the head pod's loopback, a wrong token) the RayJob fails as KubeRay's does: reason
`JobStatusCheckTimeoutExceeded` after the status-check timeout (300 s), or
`JobDeploymentStatusTransitionGracePeriodExceeded` 30 s after the submitter finished. A RayJob
being deleted gets `POST /api/jobs/<id>/stop` (KubeRay's finalizer path): the supervisor
SIGTERMs the driver and SIGKILLs it after `RAY_JOB_STOP_WAIT_TIME_S`; an unreachable dashboard
leaves the job running until its pods go.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.kube.kuberay_pods import (
    K8S_JOB_MODE,
    SIDECAR_MODE,
    add_auth_env,
    auth_headers,
    default_submitter_container,
    submitter_pod_spec,
)

Obj = dict[str, Any]
TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED")
# KubeRay's waits (rayjob_controller.go): reading the job's status may fail this long before
# the RayJob fails; a finished submitter's job must reach a terminal state within this.
STATUS_CHECK_TIMEOUT = 300.0
SUBMITTER_FINISHED_TIMEOUT = 30.0
# KubeRay's dashboard health probe of the sidecar (utils.BasePythonHealthCommand's shape).
HEALTH = (
    'python3 -c "import urllib.request; '
    "urllib.request.urlopen('{url}', timeout={timeout}).read()\""
)


def submit_command(address: str, job_id: str, entrypoint: str, runtime_env_yaml: str,
                   mode: str = SIDECAR_MODE) -> str:  # fmt: skip
    """The shell command of KubeRay's submitter (`address`: http://host:port)."""
    health = HEALTH.format(url=f"{address}/api/gcs_healthz", timeout=5)
    argv = ["ray", "job", "submit", "--address", address]
    if mode == K8S_JOB_MODE:
        argv.append("--no-wait")
    runtime_env = yaml.safe_load(runtime_env_yaml or "") or {}
    if runtime_env:
        argv += ["--runtime-env-json", json.dumps(runtime_env)]
    argv += ["--submission-id", job_id]
    waiting = shlex.quote(f"Waiting for Ray Dashboard GCS to become healthy at {address} ...")
    # The entrypoint goes in as the shell words it is (KubeRay joins it unquoted).
    submit = f"{shlex.join(argv)} -- {entrypoint.strip()}"
    wait = f"until {health} >/dev/null 2>&1 ; do echo {waiting} ; sleep 2 ; done ; "
    if mode != K8S_JOB_MODE:
        return wait + submit
    status = shlex.join(["ray", "job", "status", "--address", address, job_id])
    follow = shlex.join(["ray", "job", "logs", "--address", address, "--follow", job_id])
    return f"{wait}if ! {status} >/dev/null 2>&1 ; then {submit} ; fi ; {follow}"


def submitter_pod(rayjob_spec: Obj, head_pod: Obj, cluster: str, address: str, job_id: str,
                  mode: str, cluster_spec: Obj | None = None) -> Obj:  # fmt: skip
    """The submitter's pod: in SidecarMode the head pod's settings with KubeRay's default
    container only, in K8sJobMode the submitter pod template (or KubeRay's default); its
    container gets KubeRay's command (unless a K8sJobMode template sets one) and env.
    `cluster_spec`: the RayCluster's spec when it is not the RayJob's (a clusterSelector)."""
    if cluster_spec is None:
        cluster_spec = rayjob_spec.get("rayClusterSpec") or {}
    command = submit_command(address, job_id, rayjob_spec.get("entrypoint") or "true",
                             rayjob_spec.get("runtimeEnvYAML") or "", mode)  # fmt: skip
    if mode == K8S_JOB_MODE:
        pod = submitter_pod_spec(rayjob_spec) or {}
    else:
        container = default_submitter_container(cluster_spec)
        pod = {**{k: v for k, v in head_pod.items() if k != "containers"},
               "containers": [container]}  # fmt: skip
    container = pod["containers"][0]
    if not container.get("command") or mode != K8S_JOB_MODE:
        container["command"], container["args"] = ["/bin/bash", "-ce", "--"], [command]
    container["env"] = [
        *(container.get("env") or []),
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "RAY_DASHBOARD_ADDRESS", "value": address.removeprefix("http://")},
        {"name": "RAY_JOB_SUBMISSION_ID", "value": job_id},
    ]
    add_auth_env(container, cluster, cluster_spec)
    return pod


def _moment(millis: Any) -> datetime.datetime | None:
    if not millis:
        return None
    return datetime.datetime.fromtimestamp(int(millis) / 1000, datetime.UTC)


@dataclass
class SubmittedJob:
    """One Ray job of a RayJob, submitted by a submitter container (none in HTTPMode), read
    from the dashboard at the head service's address, as KubeRay's operator reads it."""

    job_id: str
    cluster: str
    dashboard: str  # http://<head address>:<dashboard port>
    submitter: asyncio.subprocess.Process | None  # the submitter container's `podman run`
    workdir: Path
    token: str | None = None  # the cluster's token, sent as KubeRay's dashboard client does
    info: Obj | None = None  # the job API's answer, once the job is known
    failing_since: float | None = None  # when reading the job's status began to fail
    submitter_ended: float | None = None  # when the submitter was first seen finished
    http_spec: Obj | None = None  # HTTPMode: the RayJob's spec, posted again while unknown

    @property
    def log(self) -> Path:
        return self.workdir / "submitter.log"

    @property
    def started(self) -> datetime.datetime | None:
        return _moment((self.info or {}).get("start_time"))

    @property
    def ended(self) -> datetime.datetime | None:
        return _moment((self.info or {}).get("end_time"))

    async def refresh(self, session: aiohttp.ClientSession) -> None:
        """Read the job from the dashboard (kept as it was when the dashboard is gone). An
        unknown job (404: not submitted yet) is no failure; no answer or a refusal is."""
        now = asyncio.get_running_loop().time()
        if self.submitter is not None and self.submitter.returncode is not None:
            self.submitter_ended = self.submitter_ended or now
        try:
            async with session.get(f"{self.dashboard}/api/jobs/{self.job_id}",
                                   headers=auth_headers(self.token),
                                   timeout=aiohttp.ClientTimeout(total=5)) as response:  # fmt: skip
                if response.status == 200:
                    self.info = await response.json()
                elif response.status == 404 and self.http_spec is not None:
                    await self.post(session, self.http_spec)  # KubeRay resubmits (HTTPMode)
                if response.status in (200, 404):
                    self.failing_since = None
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        self.failing_since = self.failing_since or now

    def operator_failure(self, status_check_timeout: float) -> tuple[str, str] | None:
        """(reason, message) when KubeRay's operator would fail the RayJob because it cannot
        follow the job: its status unreadable too long, or its submitter finished and the
        job not seen ending within 30 s."""
        now = asyncio.get_running_loop().time()
        if self.failing_since is not None and now - self.failing_since >= status_check_timeout:
            return ("JobStatusCheckTimeoutExceeded", "Job status checks have been failing; "
                    f"exceeded timeout of {int(status_check_timeout)}s")  # fmt: skip
        if (
            self.submitter_ended is not None
            and now - self.submitter_ended >= SUBMITTER_FINISHED_TIMEOUT
            and str((self.info or {}).get("status", "")) not in TERMINAL
        ):
            return ("JobDeploymentStatusTransitionGracePeriodExceeded",
                    "The RayJob submitter finished but the ray job did not reach terminal "
                    f"state within {int(SUBMITTER_FINISHED_TIMEOUT)}s")  # fmt: skip
        return None

    def submission_failed(self) -> bool:
        """The submitter container ended in failure while the job was not known to have
        ended: it was never submitted, or the head (its dashboard) went away under it."""
        code = None if self.submitter is None else self.submitter.returncode
        known = str((self.info or {}).get("status", ""))
        return code is not None and code != 0 and known not in TERMINAL

    def job_status(self) -> str:
        if self.submission_failed():
            return "FAILED"
        return str((self.info or {}).get("status", ""))

    def terminal(self) -> bool:
        return self.job_status() in TERMINAL

    def message(self) -> str:
        if self.submission_failed():
            assert self.submitter is not None
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            return f"Submitter container exited with code {self.submitter.returncode}:\n{tail}"
        return str((self.info or {}).get("message") or "")

    async def post(self, session: aiohttp.ClientSession, spec: Obj) -> None:
        """HTTPMode: submit the job to the dashboard as KubeRay's operator does (again while
        the dashboard does not know it)."""
        self.http_spec = spec
        runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "") or {}
        body = {"entrypoint": spec.get("entrypoint") or "true", "submission_id": self.job_id,
                "runtime_env": runtime_env}  # fmt: skip
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.post(f"{self.dashboard}/api/jobs/", json=body,
                                    headers=auth_headers(self.token),
                                    timeout=aiohttp.ClientTimeout(total=10)):  # fmt: skip
                pass

    async def stop(self, session: aiohttp.ClientSession, grace: float) -> None:
        """Stop the job through the job API (KubeRay's StopJob), then wait up to `grace`
        seconds for it to end."""
        if self.terminal():
            return
        try:
            url = f"{self.dashboard}/api/jobs/{self.job_id}/stop"
            timeout = aiohttp.ClientTimeout(total=10)
            async with session.post(
                url, headers=auth_headers(self.token), timeout=timeout
            ) as response:
                if response.status >= 400:
                    return  # refused (no token): KubeRay logs it; the job runs on
        except (aiohttp.ClientError, TimeoutError):
            return  # no dashboard reachable: the job runs until its pods go
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            await self.refresh(session)
            if self.terminal():
                return
            await asyncio.sleep(0.5)
