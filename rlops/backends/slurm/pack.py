"""Packed jobs: several trials side by side in one SLURM job on one node.

`placement.slurm.trialsPerJob: K` puts up to K trials of a round (equal batch directives,
`array_key`) in one `sbatch`: the job asks for the sum of their CPUs, memory and GPUs
(`ceil` of the summed fractions: four trials of 0.25 GPU share one device), and its
script (pack.sh.j2) starts each trial's runtime in its own run directory with its share:
math threads and the GPU devices the caller assigned (`PackSlot`). Each trial keeps its
own ending: its exit code lands in `.slurm-exit-<job>` in its run directory (`pack_exit`),
and `.slurm-stop` there naming the job (`request_stop`) stops that trial alone.

Each trial's run directory also holds `.slurm-pack-<job>`, the run directories of the job's
trials (`record_members`): whoever follows one trial knows that its job is a pack
(`pack_members`), views the job as that trial's own process (`trial_view`: the job runs on
for the others after the trial ended), and sees when every trial of the job has been told
to stop (`abandoned`), so a job still queued is cancelled rather than started for nobody.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rlops.backends.packing import Request, Slots
from rlops.backends.slurm.array import (
    LINKS_DIR,
    array_key,
    array_name,
    shared_directives,
)
from rlops.backends.slurm.client import JobObservation
from rlops.backends.slurm.render import ArrayTask, script_values
from rlops.backends.slurm.script import (
    TEMPLATES,
    ScriptError,
    _memory,
    directive,
    safe_path,
    slurm_placement,
)
from rlops.backends.slurm.settings import SlurmSettings

PACK_COMMENT = "rlops-pack="
STOP_FILE = ".slurm-stop"
MEMBERS_FILE = ".slurm-pack-{job}"  # in each trial's run directory: the job's run directories
SUMMED = ("cpus-per-task", "gpus-per-node", "mem")  # the pack asks for the sum of these


@dataclass(frozen=True)
class PackSlot:
    """One trial of a pack and its share of the job: GPU indices within the job's
    devices (a fraction of one is still that device) and math threads."""

    task: ArrayTask
    devices: tuple[int, ...] = ()
    threads: int = 1


def pack_name(tasks: Sequence[ArrayTask]) -> str:
    """`rlops-pack-<uid12>`: like an array's name, from run directories and attempts."""
    return array_name(tasks).replace("-array-", "-pack-", 1)


def pack_dir(tasks: Sequence[ArrayTask]) -> Path:
    """Where the pack's script and its own output go: beside the first run directory."""
    return tasks[0].run_dir.parent / LINKS_DIR / pack_name(tasks)


def pack_gpus(tasks: Sequence[ArrayTask]) -> int:
    """GPUs the pack asks for: placement.slurm.gpusPerNode, else the summed fractions."""
    fixed = slurm_placement(tasks[0].experiment).gpus_per_node
    if fixed is not None:
        return fixed
    return math.ceil(sum(t.experiment.spec.resources.total_gpus() for t in tasks) - 1e-9)


def _memory_mib(tasks: Sequence[ArrayTask]) -> int | None:
    amounts = [t.experiment.spec.resources.memory for t in tasks]
    if not any(amounts):
        return None
    return sum(int(_memory(a)[:-1]) for a in amounts if a)


def pack_exit(run_dir: Path, job_id: str) -> int | None:
    """The exit code the pack job `job_id` recorded for the trial in `run_dir`, if any."""
    try:
        return int((run_dir / f".slurm-exit-{job_id}").read_text().strip())
    except (OSError, ValueError):
        return None


def request_stop(run_dir: Path, job_id: str) -> None:
    """Ask the pack job `job_id` to stop the trial in `run_dir` (its runtime alone)."""
    tmp = run_dir / f"{STOP_FILE}.tmp"
    tmp.write_text(job_id)
    tmp.replace(run_dir / STOP_FILE)


def record_members(tasks: Sequence[ArrayTask], job_id: str) -> None:
    """Tell each trial's run directory that job `job_id` packs it with the others."""
    body = json.dumps([str(t.run_dir) for t in tasks])
    for task in tasks:
        path = task.run_dir / MEMBERS_FILE.format(job=job_id)
        tmp = path.with_name(f"{path.name}.tmp")
        tmp.write_text(body)
        tmp.replace(path)


def pack_members(run_dir: Path, job_id: str) -> list[Path] | None:
    """The run directories of the pack job `job_id` holds the trial of `run_dir` in;
    None when that job is no pack of it (a job of its own)."""
    try:
        body = json.loads((run_dir / MEMBERS_FILE.format(job=job_id)).read_text())
    except (OSError, ValueError):
        return None
    return [Path(p) for p in body] if isinstance(body, list) else None


def stop_requested(run_dir: Path, job_id: str) -> bool:
    """Whether the trial of `run_dir` was told to stop in job `job_id`, or ended there."""
    try:
        asked = (run_dir / STOP_FILE).read_text().strip() == job_id
    except OSError:
        asked = False
    return asked or pack_exit(run_dir, job_id) is not None


def abandoned(run_dir: Path, job_id: str) -> bool:
    """Whether every trial of the pack job `job_id` (which holds `run_dir`'s) was told to
    stop or has ended: a job in this state has nothing left to run."""
    members = pack_members(run_dir, job_id)
    return members is not None and all(stop_requested(m, job_id) for m in members)


def trial_view(job: JobObservation | None, run_dir: Path, job_id: str) -> JobObservation | None:
    """The job as the packed trial of `run_dir` sees it: once the trial recorded its exit
    code, a job that ended with that code (the job itself runs on for its packmates);
    before that, or for a job of its own, the job as it is."""
    if job is None or pack_members(run_dir, job_id) is None:
        return job
    code = pack_exit(run_dir, job_id)
    if code is None:
        return job
    return replace(job, state="COMPLETED" if code == 0 else "FAILED", exit_code=code, signal=None)


def pack_slots(tasks: Sequence[ArrayTask]) -> list[PackSlot]:
    """Each packed trial's share of its job: threads for its CPUs, and GPU devices by
    best fit (fractions share a device) among the devices the pack asks for."""
    cpus = sum(t.experiment.spec.resources.total_cpus() for t in tasks)
    devices = tuple(range(pack_gpus(tasks)))
    free = Slots(cpus=max(cpus, 1.0), gpu_ids=devices)
    slots = []
    for task in tasks:
        allocation = free.allocate(Request.of(task.experiment.spec.resources))
        if allocation is None:  # mixed fractions that best fit cannot place: share them all
            share = devices if task.experiment.spec.resources.total_gpus() else ()
            slots.append(PackSlot(task, share, 1))
            continue
        slots.append(PackSlot(task, tuple(allocation.devices), allocation.threads()))
    return slots


def render_pack_script(slots: Sequence[PackSlot], settings: SlurmSettings) -> str:
    """The pack script of `slots` (one `array_key`, one node each); raises ScriptError
    naming the field when a value is unsafe or the trials cannot share a job."""
    if not slots:
        raise ScriptError("a pack needs at least one experiment")
    tasks = [s.task for s in slots]
    first = tasks[0]
    key = array_key(first, settings)
    for i, task in enumerate(tasks):
        if array_key(task, settings) != key:
            raise ScriptError(
                f"pack slot {i} ({task.experiment.metadata.name}): its batch directives differ "
                "from slot 0's; only experiments with equal directives share a job"
            )
        if task.experiment.spec.resources.nodes > 1:
            raise ScriptError(f"pack slot {i}: resources.nodes > 1 cannot share a job")
    experiment = first.experiment
    name = pack_name(tasks)
    where = safe_path(pack_dir(tasks), "pack directory")
    cpus = math.ceil(sum(t.experiment.spec.resources.total_cpus() for t in tasks) - 1e-9)
    summed = [directive("cpus-per-task", max(1, cpus))]
    if gpus := pack_gpus(tasks):
        summed.append(directive("gpus-per-node", gpus))
    if (memory := _memory_mib(tasks)) is not None:
        summed.append(directive("mem", f"{memory}M"))
    own = [d for d in shared_directives(experiment) if d[2:].split("=", 1)[0] not in SUMMED]
    managed = [
        directive("job-name", name),
        directive("comment", PACK_COMMENT + name.rsplit("-", 1)[1]),
        directive("output", where + "/slurm-%j.out"),
        directive("chdir", where),
        *own,
        *summed,
    ]
    return TEMPLATES.get_template("pack.sh.j2").render(
        directives=managed,
        **script_values(tasks, settings),
        threads=" ".join(str(max(1, int(s.threads))) for s in slots),
        devices=" ".join(",".join(str(int(d)) for d in s.devices) or "-" for s in slots),
    )
