"""A stand-in for the KubeRay operator (v1.7): it reconciles RayJobs in the emulator.

It follows KubeRay's RayJob state machine and writes status the way KubeRay
does — `jobDeploymentStatus` New → Initializing → Running → Complete/Failed
(reason `AppFailed` or `DeadlineExceeded`), Retrying while `backoffLimit`
allows, Suspending → Suspended while `spec.suspend` is true (Kueue), and
`jobStatus` from the Ray job (RUNNING, SUCCEEDED, FAILED). It adds KubeRay's
finalizer, creates the RayCluster (owned by the RayJob, from
`rayClusterSpec`, so KubeRay's CRD schema checks it) and marks it ready.

Where KubeRay submits the entrypoint to the Ray head, the stand-in runs it
here as a shell command in a temporary directory, with the runtime
environment's `env_vars`, `RAY_ADDRESS` unset (the program starts a local Ray)
and the test's Python first on PATH. The process lives as long as its
RayCluster: deleting the cluster (suspend, retry, TTL after the job finished
with `shutdownAfterJobFinishes`) or the RayJob stops it.

In container mode (`run_in_containers`, tests/kube/ray_pods.py) every Ray pod of the cluster
(the head and each worker replica) runs as a podman container of its pod spec instead; the
cluster is ready when all their Ray nodes joined. The entrypoint is then submitted to the
head's dashboard as the RayJob's `submissionMode` has KubeRay do it (a container beside the
head in SidecarMode, the `submitterPodTemplate` pod in K8sJobMode, the stand-in itself in
HTTPMode), and `jobStatus` read from Ray's job API at the head service's address, as KubeRay's
operator reads it (tests/kube/ray_jobs.py); deleting the RayJob stops the Ray job through that
API first. With `authOptions.mode: token` the stand-in creates KubeRay's token Secret, every
Ray container and the submitter get the token, and its own dashboard calls send it
(tests/kube/kuberay_pods.py). A pod a kubelet refuses, or whose container exits, keeps the
cluster not ready; a submitter pod the namespace's Pod Security level refuses never starts.

RayClusters of their own (a Sweep's shared cluster) and RayJobs with `clusterSelector` that
run on them are handled as KubeRay v1.7 does in tests/kube/kuberay_clusters.py.

`hold()` keeps new RayJobs in Initializing (the cluster never becomes ready:
an image pull or a quota that never comes) until `release()`; the annotation
`kuberay-standin.rlops.dev/hold: "true"` does the same for one RayJob.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import json
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.kube.kuberay_clusters import (
    StandaloneClusters,
    list_and_watch,
    pods_key,
    ready_status,
    selected_cluster,
    selector_problem,
)
from tests.kube.kuberay_pods import AUTH_TOKEN_KEY, SUBMITTER, auth_secret, submission_mode
from tests.kube.pod_containers import (
    PodContext,
    PodmanPods,
    PodRefused,
    env_args,
    podman_run_args,
    secret_names,
)
from tests.kube.podsecurity import refusal as pod_security_refusal
from tests.kube.ray_jobs import STATUS_CHECK_TIMEOUT, TERMINAL, SubmittedJob, submitter_pod
from tests.kube.ray_pods import RayPod, RayPodSet, cluster_pods
from tests.kube.volume_claims import claim_names

logger = logging.getLogger(__name__)

FINALIZER = "ray.io/rayjob-stopjob-finalizer"
HOLD_ANNOTATION = "kuberay-standin.rlops.dev/hold"
RAYJOBS = "/apis/ray.io/v1/rayjobs"
# How long a stopped Ray job may take to end before its pods go. On a cluster the head pod's
# processes outlive the pod's deletion by its grace period (30 s): the kubelet's SIGTERM
# reaches only PID 1, `bash -lc`, which ignores it. Here podman's init would end the head at
# once, so the stand-in waits for the job (Ray SIGKILLs the driver after its own wait).
STOP_GRACE = 30.0

Obj = dict[str, Any]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment: datetime.datetime | None = None) -> str:
    return (moment or _now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _suffix() -> str:
    return "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))


def _path(namespace: str, plural: str, name: str = "", sub: str = "") -> str:
    tail = "/".join(p for p in (name, sub) if p)
    return f"/apis/ray.io/v1/namespaces/{namespace}/{plural}" + (f"/{tail}" if tail else "")


@dataclass
class RayProcess:
    """The entrypoint of one Ray job, running here."""

    job_id: str
    cluster: str
    process: asyncio.subprocess.Process
    workdir: Path
    started: datetime.datetime = field(default_factory=_now)
    ended: datetime.datetime | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "driver.log"

    def job_status(self) -> str:
        if self.process.returncode is None:
            return "RUNNING"
        return "SUCCEEDED" if self.process.returncode == 0 else "FAILED"

    def message(self) -> str:
        code = self.process.returncode
        if code is None:
            return "Job is currently running."
        if code == 0:
            return "Job finished successfully."
        tail = self.log.read_text(errors="replace")[-20000:] if self.log.exists() else ""
        return (
            f"Job entrypoint command failed with exit code {code}, last available logs "
            f"(truncated to 20,000 chars):\n{tail}"
        )


class KubeRayStandIn(StandaloneClusters):
    """Reconciles every RayJob of the API server at `url`, and every RayCluster of its own
    (tests/kube/kuberay_clusters.py), from a thread of its own."""

    emulated = True

    def __init__(
        self,
        url: str,
        *,
        requeue_seconds: float = 0.2,
        hold: bool = False,
        podman: PodmanPods | None = None,
    ) -> None:
        self.url = url
        self.podman = podman
        self._container_namespaces: dict[str, PodmanPods] = {}
        self._refusals: dict[tuple[str, str], str] = {}
        self._image_users: dict[str, str] = {}
        self._pod_sets: dict[tuple[str, str], RayPodSet] = {}
        self.requeue_seconds = requeue_seconds
        # KubeRay's RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS: how long reading a job may fail.
        self.status_check_timeout = STATUS_CHECK_TIMEOUT
        self._hold = hold
        self._processes: dict[tuple[str, str], RayProcess | SubmittedJob] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wakes: dict[tuple[str, str], asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._dashboards: aiohttp.ClientSession | None = None  # Ray's job API of the heads
        self._thread = threading.Thread(target=self._run, name="kuberay-standin", daemon=True)
        self._started = threading.Event()
        self.workroot = Path(tempfile.mkdtemp(prefix="kuberay-standin-"))

    # -- control from the test's thread -------------------------------------------
    def start(self) -> KubeRayStandIn:
        self._thread.start()
        self._started.wait(30)
        return self

    def stop(self) -> None:
        if self._loop is None or self._main is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        shutil.rmtree(self.workroot, ignore_errors=True)

    def hold(self) -> None:
        """Keep RayJobs in Initializing: their RayClusters do not become ready."""
        self._hold = True

    def release(self) -> None:
        """Let held RayJobs go on."""
        self._hold = False
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_all)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold RayJobs in Initializing within the block."""
        self.hold()
        try:
            yield
        finally:
            self.release()

    def run_in_containers(self, namespace: str, pods: PodmanPods | None) -> None:
        """Run the RayJobs of `namespace` in podman containers (None: as processes again)."""
        if pods is None:
            self._container_namespaces.pop(namespace, None)
        else:
            self._container_namespaces[namespace] = pods

    def pods(self, namespace: str) -> PodmanPods | None:
        """The container mode of `namespace`, if its RayJobs run in containers."""
        return self._container_namespaces.get(namespace, self.podman)

    def refusal(self, namespace: str, name: str) -> str | None:
        """Why a Ray pod of the RayJob cannot start or run (container mode), if so."""
        return self._refusals.get((namespace, name))

    def ray_pods(self, namespace: str, name: str) -> RayPodSet | None:
        """The running Ray pods of the RayJob's cluster (container mode)."""
        return self._pod_sets.get((namespace, name))

    def driver_log(self, namespace: str, name: str) -> str:
        """The output of the RayJob's current (or last) entrypoint process."""
        process = self._processes.get((namespace, name))
        return process.log.read_text(errors="replace") if process and process.log.exists() else ""

    # -- the loop -------------------------------------------------------------------
    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._main = self._loop.create_task(self._watch_forever())
        self._loop.call_soon(self._started.set)
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._main is not None
        self._main.cancel()
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(self._main, *self._workers.values(), return_exceptions=True)
        await self._stop_cluster_workers()
        for key in {*self._processes, *self._pod_sets}:
            await self._stop_process(key)
        for session in (self._session, self._dashboards):
            if session is not None:
                await session.close()

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    def _wake(self, key: tuple[str, str]) -> None:
        if key not in self._workers or self._workers[key].done():
            self._wakes[key] = asyncio.Event()
            self._workers[key] = asyncio.get_running_loop().create_task(self._worker(key))
        self._wakes[key].set()

    async def _watch_forever(self) -> None:
        self._session = aiohttp.ClientSession(self.url)
        self._dashboards = aiohttp.ClientSession()
        clusters = asyncio.get_running_loop().create_task(self._watch_clusters())
        try:
            await self._watch_jobs()
        finally:
            clusters.cancel()

    async def _watch_jobs(self) -> None:
        def wake(job: Obj) -> None:
            self._wake((job["metadata"]["namespace"], job["metadata"]["name"]))

        await list_and_watch(self._session, RAYJOBS, wake)

    async def _worker(self, key: tuple[str, str]) -> None:
        wake = self._wakes[key]
        while True:
            wake.clear()
            try:
                job = await self._get(_path(key[0], "rayjobs", key[1]))
                if job is None:
                    await self._stop_process(key)
                    return
                delay = await self._reconcile(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("kuberay stand-in: reconciling %s/%s failed", *key)
                delay = self.requeue_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)

    # -- HTTP -----------------------------------------------------------------------
    async def _get(self, path: str) -> Obj | None:
        assert self._session is not None
        async with self._session.get(path) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            body: Obj = await response.json()
            return body

    async def _send(
        self, method: str, path: str, body: Any, content_type: str = "application/json"
    ) -> int:
        assert self._session is not None
        async with self._session.request(
            method, path, data=json.dumps(body), headers={"Content-Type": content_type}
        ) as response:
            if response.status >= 400 and response.status not in (404, 409):
                logger.warning(
                    "kuberay stand-in: %s %s -> %s %s",
                    method,
                    path,
                    response.status,
                    await response.text(),
                )
            return response.status

    # -- the RayJob state machine -------------------------------------------------------
    async def _reconcile(self, job: Obj) -> float:
        """One reconcile of one RayJob; returns when to look again (seconds)."""
        meta, spec = job["metadata"], job.get("spec") or {}
        key = (meta["namespace"], meta["name"])
        if spec.get("managedBy") not in (None, "ray.io/kuberay-operator"):
            return 5.0
        if meta.get("deletionTimestamp"):
            await self._stop_job(key)  # KubeRay's StopJob, then the cluster goes
            await self._stop_process(key)
            finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            patch = {
                "metadata": {
                    "finalizers": finalizers or None,
                    "resourceVersion": meta["resourceVersion"],
                }
            }
            await self._send(
                "PATCH",
                _path(*self._ns_name(key, "rayjobs")),
                patch,
                "application/merge-patch+json",
            )
            return self.requeue_seconds
        status: Obj = copy.deepcopy(job.get("status") or {})
        before = copy.deepcopy(status)
        phase = status.get("jobDeploymentStatus", "")
        delay = self.requeue_seconds
        problem = selector_problem(spec)
        if problem is not None and phase != "ValidationFailed":
            status.update(jobDeploymentStatus="ValidationFailed", reason="ValidationFailed",
                          message=problem)  # fmt: skip
            await self._send("PUT", _path(*self._ns_name(key, "rayjobs"), "status"),
                             {**job, "status": status})  # fmt: skip
            return delay
        if phase == "ValidationFailed":
            return 5.0
        if phase == "":
            if FINALIZER not in (meta.get("finalizers") or []):
                patch = {
                    "metadata": {
                        "finalizers": [*(meta.get("finalizers") or []), FINALIZER],
                        "resourceVersion": meta["resourceVersion"],
                    }
                }
                await self._send(
                    "PATCH",
                    _path(*self._ns_name(key, "rayjobs")),
                    patch,
                    "application/merge-patch+json",
                )
                return 0.0
            status.update(
                jobId=status.get("jobId") or spec.get("jobId") or f"{meta['name']}-{_suffix()}",
                rayClusterName=status.get("rayClusterName")
                or selected_cluster(spec)
                or f"{meta['name']}-{_suffix()}",
                jobStatus=status.get("jobStatus", ""),
                jobDeploymentStatus="Initializing",
                startTime=_stamp(),
            )
        elif phase == "Initializing":
            if not self._to_suspending(spec, status) and not self._past_deadline(spec, status):
                cluster = await self._ensure_cluster(job, status)
                if (cluster.get("status") or {}).get("state") != "ready":
                    return delay
                status["dashboardURL"] = (
                    f"{status['rayClusterName']}-head-svc.{key[0]}.svc.cluster.local:8265"
                )
                await self._start_process(key, job, status)
                status["jobDeploymentStatus"] = "Running"
        elif phase == "Running":
            if not self._to_suspending(spec, status) and not self._past_deadline(spec, status):
                await self._observe_job(key, status)
                current = await self._get(
                    _path(key[0], "rayclusters", status.get("rayClusterName", ""))
                )
                if current is not None:
                    status["rayClusterStatus"] = current.get("status") or {}
        elif phase in ("Suspending", "Retrying"):
            if selected_cluster(spec) is None:
                await self._delete_cluster(key, status)
            else:  # KubeRay leaves a selected cluster alone
                await self._stop_process(key)
            for dropped in (
                "rayClusterStatus",
                "rayClusterName",
                "dashboardURL",
                "jobId",
                "message",
                "reason",
                "rayJobInfo",
            ):
                status.pop(dropped, None)
            status["jobStatus"] = ""
            status["jobDeploymentStatus"] = "Suspended" if phase == "Suspending" else ""
        elif phase == "Suspended":
            if not spec.get("suspend"):
                status.update(jobStatus="", jobDeploymentStatus="")
            else:
                delay = 1.0
        elif phase in ("Complete", "Failed"):
            return await self._after_finish(key, job, status)
        self._count_and_retry(spec, status)
        if (status.get("jobStatus"), status.get("jobDeploymentStatus")) != (
            before.get("jobStatus"),
            before.get("jobDeploymentStatus"),
        ):
            if status["jobDeploymentStatus"] in ("Complete", "Failed"):
                status["endTime"] = _stamp()
            # KubeRay's status fields are `omitempty`: empty strings are not written.
            updated = {**job, "status": {k: v for k, v in status.items() if v != ""}}
            if (
                await self._send("PUT", _path(*self._ns_name(key, "rayjobs"), "status"), updated)
                == 409
            ):
                return 0.0
        return delay

    @staticmethod
    def _ns_name(key: tuple[str, str], plural: str) -> tuple[str, str, str]:
        return key[0], plural, key[1]

    @staticmethod
    def _to_suspending(spec: Obj, status: Obj) -> bool:
        if spec.get("suspend"):
            status["jobDeploymentStatus"] = "Suspending"
            return True
        return False

    @staticmethod
    def _past_deadline(spec: Obj, status: Obj) -> bool:
        deadline = spec.get("activeDeadlineSeconds")
        started = status.get("startTime")
        if deadline is None or started is None:
            return False
        if _now() < _parse(started) + datetime.timedelta(seconds=deadline):
            return False
        status.update(
            jobDeploymentStatus="Failed",
            reason="DeadlineExceeded",
            message=(
                f"The RayJob has passed the activeDeadlineSeconds. StartTime: {started}. "
                f"ActiveDeadlineSeconds: {deadline}"
            ),
        )
        return True

    async def _observe_job(self, key: tuple[str, str], status: Obj) -> None:
        process = self._processes.get(key)
        if process is None or process.job_id != status.get("jobId"):
            return
        if isinstance(process, SubmittedJob):
            assert self._dashboards is not None
            await process.refresh(self._dashboards)
            failure = process.operator_failure(self.status_check_timeout)
            if failure is not None:  # KubeRay's operator cannot follow the job
                status.update(jobDeploymentStatus="Failed", reason=failure[0], message=failure[1])
                if failure[0] != "JobStatusCheckTimeoutExceeded":
                    status["jobStatus"] = "FAILED"
                return
        job_status = process.job_status()
        status.update(jobStatus=job_status, message=process.message())
        if not job_status:
            return  # not submitted yet (the submitter waits for the dashboard)
        info: Obj = {"startTime": _stamp(process.started)} if process.started else {}
        if process.ended is not None:
            info["endTime"] = _stamp(process.ended)
        status["rayJobInfo"] = info
        if job_status in TERMINAL:
            status["jobDeploymentStatus"] = "Failed" if job_status == "FAILED" else "Complete"
            submission = isinstance(process, SubmittedJob) and process.submission_failed()
            failed = "SubmissionFailed" if submission else "AppFailed"
            status["reason"] = failed if job_status == "FAILED" else ""
            if not status["reason"]:
                status.pop("reason")

    @staticmethod
    def _count_and_retry(spec: Obj, status: Obj) -> None:
        failed, succeeded = status.get("failed", 0), status.get("succeeded", 0)
        if status.get("jobDeploymentStatus") == "Failed":
            failed += 1
        if (
            status.get("jobStatus") == "SUCCEEDED"
            and status.get("jobDeploymentStatus") == "Complete"
        ):
            succeeded += 1
        status["failed"], status["succeeded"] = failed, succeeded
        limit = spec.get("backoffLimit")
        if (
            status.get("jobDeploymentStatus") == "Failed"
            and limit is not None
            and failed < limit + 1
            and status.get("reason") not in ("DeadlineExceeded", "JobStatusCheckTimeoutExceeded")
        ):
            status["jobDeploymentStatus"] = "Retrying"

    async def _after_finish(self, key: tuple[str, str], job: Obj, status: Obj) -> float:
        spec = job.get("spec") or {}
        if not spec.get("shutdownAfterJobFinishes") or spec.get("clusterSelector"):
            return 5.0
        shutdown = _parse(status["endTime"]) + datetime.timedelta(
            seconds=spec.get("ttlSecondsAfterFinished", 0)
        )
        if _now() < shutdown:
            return min((shutdown - _now()).total_seconds(), 1.0)
        await self._delete_cluster(key, status)
        return 5.0

    # -- the RayCluster and the process -------------------------------------------------
    async def _ensure_cluster(self, job: Obj, status: Obj) -> Obj:
        meta = job["metadata"]
        if selected_cluster(job.get("spec") or {}) is not None:
            return await self._selected(meta["namespace"], job.get("spec") or {}) or {}
        namespace, name = meta["namespace"], status["rayClusterName"]
        cluster = await self._get(_path(namespace, "rayclusters", name))
        if cluster is None:
            labels = {
                **(meta.get("labels") or {}),
                "ray.io/originated-from-cr-name": meta["name"],
                "ray.io/originated-from-crd": "RayJob",
            }
            owner = {
                "apiVersion": "ray.io/v1",
                "kind": "RayJob",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
            body = {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
                "spec": copy.deepcopy((job.get("spec") or {}).get("rayClusterSpec") or {}),
            }
            await self._send("POST", _path(namespace, "rayclusters"), body)
            cluster = await self._get(_path(namespace, "rayclusters", name))
            if cluster is None:
                return {}
        held = self._hold or (meta.get("annotations") or {}).get(HOLD_ANNOTATION) == "true"
        pods = self.pods(namespace)
        head_ip = "127.0.0.1"
        if not held and pods is not None:
            try:
                token = await self._auth_token(namespace, cluster)
                held = not await self._pods_ready(pods, (namespace, meta["name"]), cluster, token)
            except PodRefused as refused:
                self._refusals[(namespace, meta["name"])] = str(refused)
                held = True
            pod_set = self._pod_sets.get((namespace, meta["name"]))
            head_ip = pod_set.head.ip if pod_set else head_ip
        if not held and (cluster.get("status") or {}).get("state") != "ready":
            cluster["status"] = ready_status(cluster, head_ip, _stamp())
            await self._send("PUT", _path(namespace, "rayclusters", name, "status"), cluster)
        return cluster

    async def _delete_cluster(self, key: tuple[str, str], status: Obj) -> None:
        await self._stop_process(key)
        if status.get("rayClusterName"):
            await self._send("DELETE", _path(key[0], "rayclusters", status["rayClusterName"]), {})

    async def _start_process(self, key: tuple[str, str], job: Obj, status: Obj) -> None:
        current = self._processes.get(key)
        if current is not None and current.job_id == status["jobId"]:
            return
        await self._stop_driver(key)
        spec = job.get("spec") or {}
        runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "") or {}
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update({str(k): str(v) for k, v in (runtime_env.get("env_vars") or {}).items()})
        env.update(await self._head_env(job, status))  # e.g. the token from its Secret
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        workdir = Path(tempfile.mkdtemp(prefix=f"{key[1]}-", dir=self.workroot))
        given = runtime_env.get("working_dir")
        cwd = given if isinstance(given, str) and Path(given).is_dir() else str(workdir)
        selected = selected_cluster(spec)
        pod_set = self._pod_sets.get(key if selected is None else pods_key(key[0], selected))
        pods = self.pods(key[0])
        if pod_set is not None and pods is not None:
            submitted = await self._submit(pods, key[0], pod_set, job, status, workdir)
            if submitted is not None:
                self._processes[key] = submitted
                asyncio.get_running_loop().create_task(self._await_exit(key, submitted))
            return
        with open(workdir / "driver.log", "wb") as log:
            process = await asyncio.create_subprocess_shell(
                spec.get("entrypoint") or "true",
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        ray_process = RayProcess(status["jobId"], status["rayClusterName"], process, workdir)
        self._processes[key] = ray_process
        asyncio.get_running_loop().create_task(self._await_exit(key, ray_process))

    async def _submit(
        self, pods: PodmanPods, namespace: str, pod_set: RayPodSet, job: Obj, status: Obj,
        workdir: Path,
    ) -> SubmittedJob | None:  # fmt: skip
        """Submit the job as KubeRay's `submissionMode` does (tests/kube/ray_jobs.py); None
        when the namespace's Pod Security level refuses the submitter pod."""
        spec, key = job.get("spec") or {}, (namespace, job["metadata"]["name"])
        mode = submission_mode(spec)
        submitted = SubmittedJob(status["jobId"], status["rayClusterName"], pod_set.dashboard,
                                 None, workdir, token=pod_set.auth_token)  # fmt: skip
        if mode == "HTTPMode":
            assert self._dashboards is not None
            await submitted.post(self._dashboards, spec)
            return submitted
        sidecar = mode == "SidecarMode"
        address = pod_set.local_dashboard if sidecar else pod_set.dashboard
        cluster_spec = None  # a selected cluster's own (its token): KubeRay reads it
        if selected_cluster(spec) is not None:
            found = await self._get(_path(namespace, "rayclusters", status["rayClusterName"]))
            cluster_spec = (found or {}).get("spec") or {}
        pod = submitter_pod(spec, pod_set.head.spec, status["rayClusterName"], address,
                            status["jobId"], mode, cluster_spec)  # fmt: skip
        name = f"{pod_set.head.name}-{SUBMITTER}" if sidecar else f"{key[1]}-submitter"
        ns = await self._get(f"/api/v1/namespaces/{namespace}") or {}
        refused = None if sidecar else pod_security_refusal(
            "Pod", {"spec": pod}, (ns.get("metadata") or {}).get("labels") or {}
        )  # fmt: skip
        if refused is not None:  # the Job's pod is refused: the job is never submitted
            self._refusals[key] = f'pods "{name}" is forbidden: {refused}'
            return None
        submitter = RayPod(name, "submitter", pod_set.head.ip, pod)
        args = await self._pod_args(pods, namespace, submitter)
        submitted.submitter = await pod_set.start_submitter(
            pod_set.container(submitter), args, workdir / "submitter.log"
        )
        return submitted

    async def _head_env(self, job: Obj, status: Obj) -> dict[str, str]:
        """The head container's env (Secret values resolved), as its processes see it."""
        spec = job.get("spec") or {}
        head = ((spec.get("rayClusterSpec") or {}).get("headGroupSpec") or {}).get("template")
        pod = (head or {}).get("spec") or {}
        if not (pod.get("containers") or [{}])[0].get("env"):
            return {}
        secrets = await self._secrets(job["metadata"]["namespace"], pod)
        context = PodContext(job["metadata"]["namespace"], f"{status.get('rayClusterName')}-head",
                             self.workroot, self.workroot, "")  # fmt: skip
        try:
            args = env_args(pod["containers"][0], context, lambda ns, name: secrets.get(name))
        except PodRefused as refused:  # a kubelet would not start the pod: nor is the job
            logger.warning("head env of %s: %s", job["metadata"]["name"], refused)
            return {}
        return dict(a.removeprefix("--env=").split("=", 1) for a in args)

    async def _secrets(self, namespace: str, pod: Obj) -> dict[str, dict[str, str] | None]:
        """The Secrets the pod's first container reads, decoded (None: there is none)."""
        secrets: dict[str, dict[str, str] | None] = {}
        for name in secret_names(pod):
            body = await self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
            secrets[name] = None if body is None else {
                k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()
            }  # fmt: skip
        return secrets

    async def _auth_token(self, namespace: str, cluster: Obj) -> str | None:
        """KubeRay's token Secret of the cluster (created once, as KubeRay's RayCluster
        controller does) and its token; None without token authentication."""
        body = auth_secret(cluster)
        if body is None:
            return None
        path = f"/api/v1/namespaces/{namespace}/secrets/{body['metadata']['name']}"
        if await self._get(path) is None:
            await self._send("POST", path.rsplit("/", 1)[0], body)
        found = await self._get(path) or {}
        token = (found.get("data") or {}).get(AUTH_TOKEN_KEY)
        return base64.b64decode(token).decode() if token else None

    async def _pods_ready(
        self, pods: PodmanPods, key: tuple[str, str], cluster: Obj, token: str | None = None
    ) -> bool:
        """Start the cluster's Ray pods once; whether all run and joined the head."""
        name = cluster["metadata"]["name"]
        current = self._pod_sets.get(key)
        if current is None or current.cluster != name:
            await self._stop_pods(key)
            ray_pods, gcs = cluster_pods(name, cluster.get("spec") or {})
            workdir = Path(tempfile.mkdtemp(prefix=f"{name}-pods-", dir=self.workroot))
            current = RayPodSet(key[0], name, ray_pods, gcs, pods.env, workdir, auth_token=token)
            await current.start(lambda pod: self._pod_args(pods, key[0], pod))
            self._pod_sets[key] = current
        failure = current.failure()
        if failure is not None:
            self._refusals[key] = failure
            return False
        return await current.check_ready()

    async def _pod_args(self, pods: PodmanPods, namespace: str, ray_pod: RayPod) -> list[str]:
        """`podman run` arguments of one Ray pod (PodRefused when a kubelet would refuse it)."""
        pod = ray_pod.spec
        if not pod["containers"][0].get("image"):
            raise PodRefused("spec.containers[0].image: Required value")
        for claim in sorted(claim_names(pod)):
            if (
                await self._get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
                is None
            ):
                raise PodRefused(f'persistentvolumeclaim "{claim}" not found')
        secrets = await self._secrets(namespace, pod)
        context = PodContext(
            namespace, ray_pod.name, pods.volume_root, pods.claim_root,
            await self._image_user(pods, pod["containers"][0]["image"]), pods.claims,
            ray_pod.ip,
        )  # fmt: skip
        return podman_run_args(pod, context, lambda ns, name: secrets.get(name))

    async def _image_user(self, pods: PodmanPods, image: str) -> str:
        if image not in self._image_users:
            inspect = await asyncio.create_subprocess_exec(
                "podman", "image", "inspect", "--format", "{{.Config.User}}", image,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                env=pods.env,
            )  # fmt: skip
            out, _ = await inspect.communicate()
            if inspect.returncode != 0:
                raise PodRefused(f'Failed to pull image "{image}": not found')
            self._image_users[image] = out.decode().strip()
        return self._image_users[image]

    async def _await_exit(
        self, key: tuple[str, str], ray_process: RayProcess | SubmittedJob
    ) -> None:
        if isinstance(ray_process, SubmittedJob):
            if ray_process.submitter is None:
                return  # HTTPMode: nothing to wait for
            await ray_process.submitter.wait()  # `ray job submit` follows the job to its end
        else:
            await ray_process.process.wait()
            ray_process.ended = _now()
        if key in self._wakes:
            self._wakes[key].set()

    async def _stop_process(self, key: tuple[str, str]) -> None:
        """Stop the entrypoint, then delete the cluster's pods (container mode)."""
        await self._stop_driver(key)
        await self._stop_pods(key)

    async def _stop_job(self, key: tuple[str, str]) -> None:
        """Stop the Ray job through the dashboard's job API, as KubeRay does for a RayJob
        being deleted (container mode; Ray's supervisor SIGTERMs the driver)."""
        submitted = self._processes.get(key)
        if isinstance(submitted, SubmittedJob) and self._dashboards is not None:
            await submitted.stop(self._dashboards, STOP_GRACE)

    async def _stop_driver(self, key: tuple[str, str]) -> None:
        ray_process = self._processes.get(key)
        if isinstance(ray_process, SubmittedJob):
            return  # it goes with the head pod
        if ray_process is not None and ray_process.process.returncode is None:
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(ray_process.process.pid, sig)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ray_process.process.wait(), grace)
                    break

    async def _stop_pods(self, key: tuple[str, str]) -> None:
        pod_set = self._pod_sets.pop(key, None)
        if pod_set is not None:
            await pod_set.stop()
