"""The SLURM client over the command line: sbatch, squeue, scancel.

One `squeue` call observes every tracked job, finished ones included (`--states=all`
shows what slurmctld still holds, for MinJobAge). Commands that fail because
slurmctld is down or busy are retried with exponential backoff; `sbatch` is never
retried here, because a submission whose answer was lost may still have happened —
the caller looks the job up by name before it submits again.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from rlops.backends.slurm.client import (
    CommandObserver,
    JobObservation,
    SlurmUnavailable,
    SubmitError,
)
from rlops.backends.slurm.settings import SlurmSettings

FIELDS = ("JobID", "State", "Reason", "exit_code", "RestartCnt", "SubmitTime", "StartTime",
          "EndTime", "NodeList", "Comment", "Name")  # fmt: skip
FORMAT = ",".join(f"{field}:|" for field in FIELDS)
# Messages of a controller that is down, restarting or overloaded: worth a retry.
TRANSIENT = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "slurm_load_jobs error: unexpected message",
    "zero bytes were transmitted",
    "slurmctld is busy",
    "resource temporarily unavailable",
)


def _time(text: str) -> str | None:
    return None if text in ("", "N/A", "Unknown", "None", "(null)") else text


def parse_squeue(output: str) -> list[JobObservation]:
    """Parse `squeue -h -O FORMAT` lines (the name last, so a `|` in it is harmless)."""
    jobs = []
    for line in output.splitlines():
        parts = line.split("|", len(FIELDS) - 1)
        if len(parts) < len(FIELDS):
            continue
        job_id, state, reason, status, restarts, submit, start, end, nodes, comment, name = parts
        wait_status = int(status) if status.strip().isdigit() else None
        jobs.append(
            JobObservation(
                job_id=job_id.strip(),
                name=name.rstrip("|").strip(),
                state=state.strip(),
                reason=reason.strip(),
                exit_code=None if wait_status is None else wait_status >> 8,
                signal=None if wait_status is None else (wait_status & 0x7F) or None,
                restarts=int(restarts) if restarts.strip().isdigit() else 0,
                submit_time=_time(submit.strip()),
                start_time=_time(start.strip()),
                end_time=_time(end.strip()),
                nodes=nodes.strip(),
                comment="" if comment.strip() == "(null)" else comment.strip(),
            )
        )
    return jobs


class CliSlurmClient:
    """SlurmClient over the SLURM commands (the environment's SLURM_CONF applies)."""

    def __init__(
        self,
        settings: SlurmSettings | None = None,
        observer: CommandObserver | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings or SlurmSettings()
        self.observer = observer
        self.env = env

    def _bin(self, name: str) -> str:
        bin_dir = self.settings.bin_dir
        return str(Path(bin_dir) / name) if bin_dir else name

    def _run(
        self, argv: list[str], *, stdin: str | None = None, retry: bool = True
    ) -> subprocess.CompletedProcess[str]:
        attempts = self.settings.retries + 1 if retry else 1
        delay = self.settings.backoff_seconds
        for attempt in range(attempts):
            started = time.monotonic()
            try:
                proc = subprocess.run(
                    [self._bin(argv[0]), *argv[1:]],
                    input=stdin,
                    capture_output=True,
                    text=True,
                    timeout=self.settings.command_timeout_seconds,
                    env=self.env,
                    check=False,
                )
                stderr = proc.stderr.lower()
                transient = proc.returncode != 0 and any(t in stderr for t in TRANSIENT)
            except subprocess.TimeoutExpired:
                proc, transient = None, True
            if self.observer is not None:
                ok = proc is not None and proc.returncode == 0
                self.observer(argv[0], time.monotonic() - started, ok)
            if proc is not None and not transient:
                return proc
            if attempt + 1 < attempts:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        detail = proc.stderr.strip() if proc is not None else "timed out"
        raise SlurmUnavailable(f"{argv[0]}: slurmctld did not answer: {detail}")

    def submit(self, script: str, *, hold: bool = False) -> str:
        argv = ["sbatch", "--parsable", *(["--hold"] if hold else [])]
        proc = self._run(argv, stdin=script, retry=False)
        if proc.returncode != 0:
            raise SubmitError(f"sbatch rejected the script: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";", 1)[0]

    def jobs(self, job_ids: Iterable[str]) -> dict[str, JobObservation]:
        ids = sorted(set(job_ids), key=lambda j: (len(j), j))
        if not ids:
            return {}
        argv = ["squeue", "-h", "--states=all", f"--jobs={','.join(ids)}", "-O", FORMAT]
        proc = self._run(argv)
        if proc.returncode != 0:
            if "invalid job id" in proc.stderr.lower():
                return {}  # A single id SLURM no longer knows.
            raise SlurmUnavailable(f"squeue failed: {proc.stderr.strip()}")
        wanted = set(ids)
        return {j.job_id: j for j in parse_squeue(proc.stdout) if j.job_id in wanted}

    def find_by_name(self, name: str) -> list[JobObservation]:
        proc = self._run(["squeue", "-h", "--states=all", f"--name={name}", "-O", FORMAT])
        if proc.returncode != 0:
            raise SlurmUnavailable(f"squeue failed: {proc.stderr.strip()}")
        found = [j for j in parse_squeue(proc.stdout) if j.name == name]
        return sorted(found, key=lambda j: int(j.job_id) if j.job_id.isdigit() else 0)

    def cancel(self, job_id: str) -> None:
        proc = self._run(["scancel", job_id])
        if proc.returncode != 0 and "already completing or completed" not in proc.stderr:
            if "invalid job id" in proc.stderr.lower():
                return
            raise SlurmUnavailable(f"scancel {job_id} failed: {proc.stderr.strip()}")
