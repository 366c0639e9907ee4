"""A RayJob's entrypoint submitted through Ray's job API, as KubeRay (v1.7) does in the KubeRay
stand-in's container mode.

The submission (SidecarMode, what rlops renders while the dashboard is not exposed): a
submitter container beside the head container, from the head's image, running the command
KubeRay generates (`BuildJobSubmitCommand`): wait until the dashboard answers
`/api/gcs_healthz`, then `ray job submit --address http://127.0.0.1:<dashboard port>
--runtime-env-json ... --submission-id <jobId> -- <entrypoint>`, which follows the job until
it ends (a submitter that fails while the job has not ended, e.g. when the head pod dies,
fails the RayJob with reason SubmissionFailed). In the stand-in each pod's loopback is its
own address (127.151.x.y, pods share the host's network), so "127.0.0.1" of the head pod
is the head's address here.

Ray's job supervisor, an actor on the head node, then runs the entrypoint in the head
container. The RayJob's `jobStatus`, `message` and `rayJobInfo` come from the dashboard's job
API (`GET /api/jobs/<id>`), as KubeRay reads them. A RayJob being deleted gets
`POST /api/jobs/<id>/stop` (KubeRay's finalizer path): the supervisor SIGTERMs the driver and
SIGKILLs it after `RAY_JOB_STOP_WAIT_TIME_S`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

Obj = dict[str, Any]
SUBMITTER = "ray-job-submitter"
TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED")
# KubeRay's default submitter container resources.
SUBMITTER_RESOURCES = {"limits": {"cpu": "1", "memory": "1Gi"},
                       "requests": {"cpu": "500m", "memory": "200Mi"}}  # fmt: skip
# KubeRay's dashboard health probe of the sidecar (utils.BasePythonHealthCommand's shape).
HEALTH = (
    'python3 -c "import urllib.request; '
    "urllib.request.urlopen('{url}', timeout={timeout}).read()\""
)


def submit_command(dashboard_port: int, job_id: str, entrypoint: str, runtime_env_yaml: str,
                   host: str = "127.0.0.1") -> str:  # fmt: skip
    """The shell command of KubeRay's SidecarMode submitter container."""
    address = f"http://{host}:{dashboard_port}"
    health = HEALTH.format(url=f"{address}/api/gcs_healthz", timeout=5)
    argv = ["ray", "job", "submit", "--address", address]
    runtime_env = yaml.safe_load(runtime_env_yaml or "") or {}
    if runtime_env:
        argv += ["--runtime-env-json", json.dumps(runtime_env)]
    argv += ["--submission-id", job_id]
    waiting = shlex.quote(f"Waiting for Ray Dashboard GCS to become healthy at {address} ...")
    # The entrypoint goes in as the shell words it is (KubeRay joins it unquoted).
    submit = f"{shlex.join(argv)} -- {entrypoint.strip()}"
    return f"until {health} >/dev/null 2>&1 ; do echo {waiting} ; sleep 2 ; done ; {submit}"


def submitter_pod(head_pod: Obj, command: str) -> Obj:
    """The head pod's spec with only its submitter container (image and pod settings of the
    head, KubeRay's default resources and command)."""
    head = head_pod["containers"][0]
    container = {"name": SUBMITTER, "image": head["image"],
                 "command": ["/bin/bash", "-ce", "--"], "args": [command],
                 "resources": SUBMITTER_RESOURCES}  # fmt: skip
    return {**{k: v for k, v in head_pod.items() if k != "containers"}, "containers": [container]}


def _moment(millis: Any) -> datetime.datetime | None:
    if not millis:
        return None
    return datetime.datetime.fromtimestamp(int(millis) / 1000, datetime.UTC)


@dataclass
class SubmittedJob:
    """One Ray job of a RayJob, submitted by a submitter container, read from the dashboard."""

    job_id: str
    cluster: str
    dashboard: str  # http://<head address>:<dashboard port>
    submitter: asyncio.subprocess.Process  # the submitter container's `podman run`
    workdir: Path
    info: Obj | None = None  # the job API's answer, once the job is known

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
        """Read the job from the dashboard (kept as it was when the dashboard is gone)."""
        try:
            async with session.get(f"{self.dashboard}/api/jobs/{self.job_id}",
                                   timeout=aiohttp.ClientTimeout(total=5)) as response:  # fmt: skip
                if response.status == 200:
                    self.info = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            pass

    def submission_failed(self) -> bool:
        """The submitter container ended in failure while the job was not known to have
        ended: it was never submitted, or the head (its dashboard) went away under it."""
        code = self.submitter.returncode
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
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            return f"Submitter container exited with code {self.submitter.returncode}:\n{tail}"
        return str((self.info or {}).get("message") or "")

    async def stop(self, session: aiohttp.ClientSession, grace: float) -> None:
        """Stop the job through the job API (KubeRay's StopJob), then wait up to `grace`
        seconds for it to end."""
        if self.terminal():
            return
        try:
            async with session.post(f"{self.dashboard}/api/jobs/{self.job_id}/stop",
                                    timeout=aiohttp.ClientTimeout(total=10)):  # fmt: skip
                pass
        except (aiohttp.ClientError, TimeoutError):
            return  # no dashboard: nothing runs the job any more
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            await self.refresh(session)
            if self.terminal():
                return
            await asyncio.sleep(0.5)
