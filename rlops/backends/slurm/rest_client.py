"""The SLURM client over slurmrestd (OpenAPI v0.0.38, as Debian 12's SLURM 22.05 ships).

It talks HTTP over slurmrestd's unix socket (`rest_auth/local`: the caller's uid) or
TCP with a JWT (`rest_auth/jwt`: X-SLURM-USER-NAME / X-SLURM-USER-TOKEN). This API
version does not read `#SBATCH` lines, so the rendered script's directives are
translated into the job description; a directive it cannot express is an error.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from rlops.backends.slurm.client import (
    CommandObserver,
    JobObservation,
    SlurmUnavailable,
    SubmitError,
)
from rlops.backends.slurm.parsers import as_tasks, submission_order

log = logging.getLogger(__name__)

API = "/slurm/v0.0.38"
HOLD_MESSAGE = 2042  # "Job is in held state": an information, not an error


# `#SBATCH --flag=value` → (job description key, converter).
def _minutes(text: str) -> int:
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # D-HH[:MM[:SS]]
        parts += [0] * (3 - len(parts))
        return int(days) * 1440 + parts[0] * 60 + parts[1] + (1 if parts[2] else 0)
    if len(parts) == 1:  # MM
        return parts[0]
    if len(parts) == 2:  # MM:SS
        return parts[0] + (1 if parts[1] else 0)
    return parts[0] * 60 + parts[1] + (1 if parts[2] else 0)  # HH:MM:SS


DIRECTIVES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "job-name": ("name", str),
    "comment": ("comment", str),
    "output": ("standard_output", str),
    "chdir": ("current_working_directory", str),
    "requeue": ("requeue", lambda _: True),
    "nodes": ("nodes", int),
    "ntasks-per-node": ("tasks_per_node", int),
    "cpus-per-task": ("cpus_per_task", int),
    "gpus-per-node": ("tres_per_node", lambda v: f"gres:gpu:{v}"),
    "mem": ("memory_per_node", lambda v: int(v.rstrip("M"))),
    "partition": ("partition", str),
    "account": ("account", str),
    "qos": ("qos", str),
    "time": ("time_limit", _minutes),
    # v0.0.38 cannot send a signal to the batch shell alone: the whole job gets it,
    # which the runtime handles the same way (it checkpoints once).
    "signal": ("signal", lambda v: v.removeprefix("B:")),
    "constraint": ("constraints", str),
    "array": ("array", str),
}
IGNORED = {"open-mode"}  # the REST API always appends on requeue
_LINE = re.compile(r"#SBATCH\s+--([a-z][a-z0-9-]*)(?:=(\S+))?\s*")


def job_description(script: str, environment: dict[str, str]) -> dict[str, Any]:
    """The `job` object of a submission, from the script's `#SBATCH` lines."""
    job: dict[str, Any] = {"environment": environment}
    for line in script.splitlines():
        m = _LINE.fullmatch(line)
        if not m:
            continue
        flag, value = m.group(1), m.group(2) or ""
        if flag in IGNORED:
            continue
        if flag not in DIRECTIVES:
            raise SubmitError(
                f"slurmrestd client: #SBATCH --{flag} is not supported; supported: "
                + ", ".join(sorted(DIRECTIVES))
            )
        key, convert = DIRECTIVES[flag]
        job[key] = convert(value)
    job.setdefault("current_working_directory", os.getcwd())
    return job


def _iso(epoch: object) -> str | None:
    if not isinstance(epoch, int) or epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def observation(job: dict[str, Any]) -> JobObservation:
    status = job.get("exit_code")
    wait_status = status if isinstance(status, int) else None
    return JobObservation(
        job_id=str(job["job_id"]),
        name=str(job.get("name") or ""),
        state=str(job.get("job_state") or "UNKNOWN"),
        reason=str(job.get("state_reason") or ""),
        exit_code=None if wait_status is None else wait_status >> 8,
        signal=None if wait_status is None else (wait_status & 0x7F) or None,
        restarts=int(job.get("restart_cnt") or 0),
        submit_time=_iso(job.get("submit_time")),
        start_time=_iso(job.get("start_time")),
        end_time=_iso(job.get("end_time")),
        nodes=str(job.get("nodes") or ""),
        comment=str(job.get("comment") or ""),
        user_id=job["user_id"] if isinstance(job.get("user_id"), int) else None,
    )


def observations(job: dict[str, Any]) -> list[JobObservation]:
    """One job of GET /jobs; an array's pending range as one observation per task."""
    array_job = job.get("array_job_id")
    if not isinstance(array_job, int) or array_job <= 0:
        return as_tasks(observation(job), "", "")
    task = job.get("array_task_string") or job.get("array_task_id")
    return as_tasks(observation(job), str(array_job), str(task if task is not None else ""))


class RestSlurmClient:
    """SlurmClient over slurmrestd. `jobs` is one GET of /jobs, filtered here.

    Only the caller's own jobs are seen, adopted or cancelled, as `squeue --me` and
    `scancel --me` do for the CLI client: a job counts as ours when its owner is the
    token's user (`X-SLURM-USER-NAME`), or, over the unix socket with local auth, this
    process's uid. An operator or root identity could otherwise cancel anyone's job.

    Jobs slurmctld has forgotten are not looked up: that needs the slurmdbd side of
    the API (`/slurmdb/v0.0.38/job/{id}`, plugin `openapi/dbv0.0.38`), which only works
    with a slurmdbd; without one the run directory's result.json decides.
    """

    def __init__(
        self,
        socket: Path | None = None,
        base_url: str = "http://slurmrestd",
        token: str | None = None,
        user: str | None = None,
        observer: CommandObserver | None = None,
        timeout: float = 30.0,
        environment: dict[str, str] | None = None,
    ) -> None:
        transport = httpx.HTTPTransport(uds=str(socket)) if socket else None
        headers = {}
        self.user_name = (user or getpass.getuser()) if token else None
        if self.user_name is not None:
            headers = {"X-SLURM-USER-NAME": self.user_name, "X-SLURM-USER-TOKEN": str(token)}
        self.http = httpx.Client(
            transport=transport, base_url=base_url, headers=headers, timeout=timeout
        )
        self.observer = observer
        self.environment = environment if environment is not None else dict(os.environ)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        started = time.monotonic()
        ok = False
        try:
            response = self.http.request(method, API + path, **kwargs)
            body: dict[str, Any] = response.json()
            ok = response.status_code < 400
            body["_status"] = response.status_code
            return body
        except (httpx.HTTPError, ValueError) as exc:
            raise SlurmUnavailable(f"slurmrestd {method} {path}: {exc}") from exc
        finally:
            if self.observer is not None:
                self.observer(f"rest {method} {path.split('/')[1]}", time.monotonic() - started, ok)

    @staticmethod
    def _errors(body: dict[str, Any], ignore: Iterable[int] = ()) -> list[str]:
        skip = set(ignore)
        return [
            str(e.get("description") or e.get("error"))
            for e in body.get("errors", [])
            if e.get("error_code", e.get("error_number")) not in skip
        ]

    def submit(self, script: str, *, hold: bool = False, comment: str | None = None) -> str:
        job = job_description(script, self.environment)
        if hold:
            job["hold"] = True
        if comment is not None:
            job["comment"] = comment
        body = self._call("POST", "/job/submit", json={"script": script, "job": job})
        if "job_id" not in body:
            raise SubmitError("slurmrestd rejected the job: " + "; ".join(self._errors(body)))
        return str(body["job_id"])

    def _mine(self, job: dict[str, Any]) -> bool:
        if self.user_name is not None:
            return job.get("user_name") == self.user_name
        return job.get("user_id") == os.getuid()

    def _all_jobs(self) -> list[JobObservation]:
        """The caller's jobs (array tasks one by one)."""
        body = self._call("GET", "/jobs")
        if body["_status"] >= 400:
            raise SlurmUnavailable("slurmrestd GET /jobs: " + "; ".join(self._errors(body)))
        return [task for j in body.get("jobs", []) if self._mine(j) for task in observations(j)]

    def jobs(self, job_ids: Iterable[str]) -> dict[str, JobObservation]:
        wanted = set(job_ids)
        if not wanted:
            return {}
        return {j.job_id: j for j in self._all_jobs() if j.job_id in wanted}

    def find_by_name(self, name: str) -> list[JobObservation]:
        found = [j for j in self._all_jobs() if j.name == name]
        return sorted(found, key=submission_order)

    def cancel(self, job_id: str) -> None:
        """Cancel one of the caller's jobs; another user's job is left alone, as `scancel
        --me` leaves it."""
        found = self._call("GET", f"/job/{job_id}")
        if not all(self._mine(j) for j in found.get("jobs", [])):
            log.warning("not cancelling SLURM job %s: it belongs to another user", job_id)
            return
        body = self._call("DELETE", f"/job/{job_id}")
        errors = self._errors(body)
        if body["_status"] >= 400 and not any(
            "invalid job id" in e.lower() or "already" in e.lower() for e in errors
        ):
            raise SlurmUnavailable(f"slurmrestd DELETE /job/{job_id}: " + "; ".join(errors))

    def terminate(self, job_id: str) -> None:
        # v0.0.38 cannot signal the batch shell alone: the job is cancelled, so every
        # process (Ray's too) gets SIGTERM at once, and the runtime checkpoints only if it
        # ends its iteration before Ray has gone.
        self.cancel(job_id)
