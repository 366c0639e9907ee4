"""The SLURM client over the command line: sbatch, squeue, sacct, scontrol, scancel.

One poll costs a constant number of commands whatever the number of jobs:

- one `squeue -r --states=all --jobs=...` for every tracked job slurmctld still holds
  (`-r`: one line per array task; a task's id is `<array job>_<task>`);
- for ids it no longer holds (purged after MinJobAge), one `sacct -X -j id1,id2,...`
  from the accounting database or, on a cluster without one, from the job completion
  log (`sacct --completion`, JobCompType=jobcomp/filetxt); which one works is found
  out on first use and remembered (neither: the run directory's result.json decides);
- when squeue is missing or fails for a reason other than an unreachable slurmctld,
  one `scontrol -o show job` (every job slurmctld holds, filtered here) instead, for
  the rest of the client's life.

Commands that fail because slurmctld is down or busy are retried with exponential
backoff; `sbatch` is never retried here, because a submission whose answer was lost
may still have happened — the caller looks the job up by name before it submits again.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from rlops.backends.slurm.client import (
    CommandObserver,
    JobObservation,
    SlurmRefused,
    SlurmUnavailable,
    SubmitError,
)
from rlops.backends.slurm.parsers import (
    SACCT_FORMAT,
    SQUEUE_FORMAT,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    submission_order,
)
from rlops.backends.slurm.settings import SlurmSettings
from rlops.backends.slurm.states import ACTIVE, QUEUED, base_state

__all__ = ["CliSlurmClient", "parse_squeue"]

FORMAT = SQUEUE_FORMAT
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
NOT_FOUND = 127  # the return code given to a command that could not be started
ACCOUNTING_DISABLED = "accounting storage is disabled"
DONE = ("already completing or completed", "invalid job id")
SQUEUE_RETRY_SECONDS = 300.0  # scancel of an ended job
log = logging.getLogger("rlops.backends.slurm")


def _numeric(job_ids: Iterable[str]) -> list[str]:
    return sorted(set(job_ids), key=lambda j: (len(j), j))


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
        self.squeue_broken: str | None = None  # why squeue is not used (then: scontrol)
        self.squeue_broken_at = 0.0  # when: squeue is tried again SQUEUE_RETRY_SECONDS later
        self.sacct_mode: str | None = None  # "accounting", "completion", "off"; None: unknown
        # Array task id (`123_4`) -> the task's own job id, as squeue/scontrol showed it: how
        # sacct finds a task (the job completion log knows no array ids).
        self.raw_ids: dict[str, str] = {}

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
            except OSError as exc:  # missing or not executable: not worth a retry
                proc = subprocess.CompletedProcess(argv, NOT_FOUND, "", f"{argv[0]}: {exc}")
                transient = False
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

    def submit(self, script: str, *, hold: bool = False, comment: str | None = None) -> str:
        argv = ["sbatch", "--parsable", *(["--hold"] if hold else [])]
        if comment is not None:  # the command line wins over the script's #SBATCH --comment
            argv.append(f"--comment={comment}")
        proc = self._run(argv, stdin=script, retry=False)
        if proc.returncode != 0:
            raise SubmitError(f"sbatch rejected the script: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";", 1)[0]

    def jobs(self, job_ids: Iterable[str]) -> dict[str, JobObservation]:
        ids = _numeric(job_ids)
        if not ids:
            return {}
        found = self._held(ids)
        missing = [j for j in ids if j not in found]
        if missing:
            found.update(self._accounted(missing))
        return found

    def find_by_name(self, name: str) -> list[JobObservation]:
        found: list[JobObservation] | None = None
        if self._squeue_usable():
            argv = ["squeue", "--me", "-h", "-r", "--states=all", f"--name={name}", "-O", FORMAT]
            proc = self._run(argv)
            if proc.returncode == 0:
                found = parse_squeue(proc.stdout)
            else:
                self._squeue_failed(proc)
        if found is None:
            found = self._scontrol()
        named = [j for j in found if j.name == name]
        return sorted(named, key=submission_order)

    def cancel(self, job_id: str) -> None:
        self._scancel([job_id])

    def terminate(self, job_id: str) -> None:
        # The state first: scancel refuses to signal a job without a batch shell yet, and
        # retries for minutes before it says so; `--state` would cancel a whole array.
        job = self.jobs([job_id]).get(job_id)
        state = base_state(job.state) if job is not None else "GONE"
        if state == "RUNNING":
            self._scancel(["--batch", "--signal=TERM", job_id])
        elif state in QUEUED or state in ACTIVE:
            self.cancel(job_id)

    def _scancel(self, argv: list[str]) -> None:
        proc = self._run(["scancel", "--me", *argv])
        if proc.returncode != 0 and not any(text in proc.stderr.lower() for text in DONE):
            raise SlurmRefused(f"scancel {' '.join(argv)} failed: {proc.stderr.strip()}")

    # --- observing ---------------------------------------------------------------------

    def _held(self, ids: list[str]) -> dict[str, JobObservation]:
        """The given jobs slurmctld still holds: one squeue, or one scontrol without it."""
        wanted = set(ids)
        if self._squeue_usable():
            argv = ["squeue", "--me", "-h", "-r", "--states=all", f"--jobs={','.join(ids)}",
                    "-O", FORMAT]  # fmt: skip
            proc = self._run(argv)
            if proc.returncode == 0:
                return self._remember(j for j in parse_squeue(proc.stdout) if j.job_id in wanted)
            if "invalid job id" in proc.stderr.lower():
                return {}  # squeue's answer when none of the ids is known any more
            self._squeue_failed(proc)
        return self._remember(j for j in self._scontrol() if j.job_id in wanted)

    def _remember(self, jobs: Iterable[JobObservation]) -> dict[str, JobObservation]:
        found = {j.job_id: j for j in jobs}
        for job in found.values():
            # A task still pending shares its array's record: its own id comes when it starts.
            if job.raw_id and job.raw_id != job.job_id and job.state != "PENDING":
                self.raw_ids[job.job_id] = job.raw_id
        return found

    def _squeue_usable(self) -> bool:
        """squeue unless it failed lately; a broken one is tried again after a while (one
        munge error must not send every later poll to scontrol)."""
        if self.squeue_broken is None:
            return True
        if time.monotonic() - self.squeue_broken_at >= SQUEUE_RETRY_SECONDS:
            self.squeue_broken = None
            return True
        return False

    def _squeue_failed(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.squeue_broken = proc.stderr.strip() or f"exit {proc.returncode}"
        self.squeue_broken_at = time.monotonic()
        log.warning("squeue failed (%s); observing jobs with scontrol for %.0f s",
                    self.squeue_broken, SQUEUE_RETRY_SECONDS)  # fmt: skip

    def _scontrol(self) -> list[JobObservation]:
        """Every job slurmctld holds that is ours (scontrol shows every user's)."""
        proc = self._run(["scontrol", "-o", "show", "job"])
        if proc.returncode != 0:
            raise SlurmUnavailable(f"scontrol show job failed: {proc.stderr.strip()}")
        uid = os.getuid()
        return [j for j in parse_scontrol(proc.stdout) if j.user_id == uid]

    def _accounted(self, ids: list[str]) -> dict[str, JobObservation]:
        """Jobs slurmctld forgot, from sacct; {} where this cluster keeps no record."""
        if self.sacct_mode == "off":
            return {}
        # sacct is asked by the jobs' own ids: array tasks by the ids squeue showed them with.
        by_raw = {self.raw_ids.get(j, j): j for j in ids}
        raw = [r for r in by_raw if "_" not in r]
        if not raw:
            return {}
        mode = self.sacct_mode or "accounting"
        proc = self._sacct(raw, mode)
        if mode == "accounting" and ACCOUNTING_DISABLED in proc.stderr.lower():
            mode = "completion"  # no database; the job completion log may still answer
            proc = self._sacct(raw, mode)
        if proc.returncode != 0:
            self.sacct_mode = "off"
            log.warning("sacct is unusable (%s); finished jobs are read from their run "
                        "directory", proc.stderr.strip())  # fmt: skip
            return {}
        self.sacct_mode = mode
        return {
            by_raw[j.job_id]: replace(j, job_id=by_raw[j.job_id])
            for j in parse_sacct(proc.stdout)
            if j.job_id in by_raw
        }

    def _sacct(self, ids: list[str], mode: str) -> subprocess.CompletedProcess[str]:
        completion = ["--completion"] if mode == "completion" else []
        argv = ["sacct", *completion, "-X", "-P", "-n", f"--jobs={','.join(ids)}",
                f"--format={SACCT_FORMAT}"]  # fmt: skip
        return self._run(argv)
