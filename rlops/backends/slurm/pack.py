"""Packed jobs: several trials side by side in one SLURM job on one node.

`placement.slurm.trialsPerJob: K` puts up to K trials of a round (equal batch directives,
`array_key`) in one `sbatch`: the job asks for the sum of their CPUs, memory and GPUs
(`ceil` of the summed fractions: four trials of 0.25 GPU share one device), and its
script (pack.sh.j2) starts each trial's runtime in its own run directory with its share:
math threads and the GPU devices the caller assigned (`PackSlot`). Each trial keeps its
own ending: its exit code lands in `.slurm-exit-<job>` in its run directory (`pack_exit`),
and `.slurm-stop` there naming the job (`request_stop`) stops that trial alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlops.backends.slurm.array import (
    LINKS_DIR,
    array_key,
    array_name,
    shared_directives,
)
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
