"""Parsers of what the SLURM commands print about jobs, all onto `JobObservation` (pure).

- `squeue -h -O FIELDS` (the CLI client's usual batched call): exit code as a wait status;
- `sacct -X -P -n --format=SACCT_FIELDS` (with `--completion` on clusters that keep no
  accounting database but a job completion log): jobs slurmctld has already forgotten;
- `scontrol -o show job` (one line of `Key=Value` pairs per job): when squeue is missing
  or broken.

States are reduced to their base word (`CANCELLED by 0` → `CANCELLED`), so every parser
feeds the same state mapping. Array tasks are named `<array job>_<task>` by every parser;
a pending range that SLURM still holds as one record (`ArrayTaskId=2-5%2`) becomes one
observation per task.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rlops.backends.slurm.client import JobObservation

SQUEUE_FIELDS = ("JobID", "State", "Reason", "exit_code", "RestartCnt", "SubmitTime",
                 "StartTime", "EndTime", "NodeList", "Comment", "ArrayJobID", "ArrayTaskID",
                 "Name")  # fmt: skip
SQUEUE_FORMAT = ",".join(f"{field}:|" for field in SQUEUE_FIELDS)
# The name last, so a `|` in it is harmless.
SACCT_FIELDS = ("JobIDRaw", "State", "Reason", "ExitCode", "Submit", "Start", "End",
                "NodeList", "Comment", "JobName")  # fmt: skip
SACCT_FORMAT = ",".join(SACCT_FIELDS)
# A space followed by `Key=` starts the next pair of `scontrol -o` (keys such as
# `AllocNode:Sid` and `CPUs/Task` included); a job name with a space stays whole.
_PAIR = re.compile(r" +(?=[A-Za-z][A-Za-z0-9_:/]*=)")
_NULL = ("", "N/A", "Unknown", "None", "(null)")


def _time(text: str) -> str | None:
    text = text.strip()
    return None if text in _NULL else text


def _text(text: str) -> str:
    text = text.strip()
    return "" if text == "(null)" else text


def _state(text: str) -> str:
    words = text.split()
    return words[0].rstrip("+") if words else "UNKNOWN"


def _exit_pair(text: str) -> tuple[int | None, int | None]:
    """`exit:signal` as sacct and scontrol print it; a zero signal is no signal."""
    code, _, signal = text.strip().partition(":")
    if not code.isdigit():
        return None, None
    return int(code), (int(signal) or None) if signal.isdigit() else None


def task_ids(text: str) -> list[int]:
    """The tasks of an ArrayTaskId: `4`, `2-5`, `1,3-4`, `0-7%2` (throttle ignored); [] else."""
    out: list[int] = []
    for item in text.strip().split("%", 1)[0].split(","):
        first, _, last = item.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return []
        out.extend(range(int(first), int(last or first) + 1))
    return out


def as_tasks(job: JobObservation, array_job: str, array_task: str) -> list[JobObservation]:
    """`job` as the array tasks it stands for (`<array job>_<task>`), or as itself."""
    array_job = array_job.strip()
    tasks = task_ids(array_task) if array_job.isdigit() else []
    if not tasks:
        return [replace(job, raw_id=job.job_id)]
    return [replace(job, job_id=f"{array_job}_{t}", raw_id=job.job_id) for t in tasks]


def submission_order(job: JobObservation) -> tuple[int, int]:
    """Sort key, oldest first: by job id, an array's tasks by task (`123_4`)."""
    job_id, _, task = job.job_id.partition("_")
    return (int(job_id) if job_id.isdigit() else 0, int(task) if task.isdigit() else -1)


def parse_squeue(output: str) -> list[JobObservation]:
    """Parse `squeue -h -O SQUEUE_FORMAT` lines."""
    jobs = []
    for line in output.splitlines():
        parts = line.split("|", len(SQUEUE_FIELDS) - 1)
        if len(parts) < len(SQUEUE_FIELDS):
            continue
        job_id, state, reason, status, restarts, submit, start, end, nodes, comment = parts[:10]
        array_job, array_task, name = parts[10:]
        wait_status = int(status) if status.strip().isdigit() else None
        job = JobObservation(
            job_id=job_id.strip(),
            name=name.rstrip("|").strip(),
            state=_state(state),
            reason=reason.strip(),
            exit_code=None if wait_status is None else wait_status >> 8,
            signal=None if wait_status is None else (wait_status & 0x7F) or None,
            restarts=int(restarts) if restarts.strip().isdigit() else 0,
            submit_time=_time(submit),
            start_time=_time(start),
            end_time=_time(end),
            nodes=nodes.strip(),
            comment=_text(comment),
        )
        jobs.extend(as_tasks(job, array_job, array_task))
    return jobs


def parse_sacct(output: str) -> list[JobObservation]:
    """Parse `sacct -X -P -n --format=SACCT_FORMAT` lines (restart counts are not kept)."""
    jobs = []
    for line in output.splitlines():
        parts = line.split("|", len(SACCT_FIELDS) - 1)
        if len(parts) < len(SACCT_FIELDS) or not parts[0].strip():
            continue
        job_id, state, reason, exit_pair, submit, start, end, nodes, comment, name = parts
        code, signal = _exit_pair(exit_pair)
        jobs.append(
            JobObservation(
                job_id=job_id.strip(),
                name=name.strip(),
                state=_state(state),
                reason=_text(reason),
                exit_code=code,
                signal=signal,
                submit_time=_time(submit),
                start_time=_time(start),
                end_time=_time(end),
                nodes=_text(nodes),
                comment=_text(comment),
                raw_id=job_id.strip(),
            )
        )
    return jobs


# The job name (free text) runs up to the user id that scontrol always prints after it.
_JOB_NAME = re.compile(r"(?:^| )JobName=(.*?) UserId=")
_UID = re.compile(r"\((\d+)\)")


def scontrol_pairs(line: str) -> dict[str, str]:
    """One line of `scontrol -o show job` as its `Key=Value` pairs.

    Free text (a job name or comment) may hold ` Key=`: the first occurrence of a key
    wins, since every field rlops reads is printed before the comment, and the job name
    is read up to its `UserId=`, so neither can override a real field."""
    line = line.strip()
    pairs: dict[str, str] = {}
    name = _JOB_NAME.search(line)
    if name is not None:
        pairs["JobName"] = name.group(1).strip()
        line = line[: name.start()] + " " + line[name.end() - len("UserId=") :]
    for item in _PAIR.split(line.strip()):
        key, sep, value = item.partition("=")
        if sep:
            pairs.setdefault(key, value.strip())
    return pairs


def parse_scontrol(output: str) -> list[JobObservation]:
    """Parse `scontrol -o show job` (no jobs: `No jobs in the system`)."""
    jobs = []
    for line in output.splitlines():
        pairs = scontrol_pairs(line)
        if "JobId" not in pairs:
            continue
        code, signal = _exit_pair(pairs.get("ExitCode", ""))
        restarts = pairs.get("Restarts", "0")
        job = JobObservation(
            job_id=pairs["JobId"],
            name=pairs.get("JobName", ""),
            state=_state(pairs.get("JobState", "")),
            reason=_text(pairs.get("Reason", "")),
            exit_code=code,
            signal=signal,
            restarts=int(restarts) if restarts.isdigit() else 0,
            submit_time=_time(pairs.get("SubmitTime", "")),
            start_time=_time(pairs.get("StartTime", "")),
            end_time=_time(pairs.get("EndTime", "")),
            nodes=_text(pairs.get("NodeList", "")),
            comment=_text(pairs.get("Comment", "")),
            user_id=int(uid.group(1)) if (uid := _UID.search(pairs.get("UserId", ""))) else None,
        )
        jobs.extend(as_tasks(job, pairs.get("ArrayJobId", ""), pairs.get("ArrayTaskId", "")))
    return jobs
