"""Job arrays: several experiments with the same batch directives as one `sbatch --array`.

A sweep's trials usually differ only in their spec, so one array job carries a round of
them: task i selects its run directory and first attempt from a quoted table in the
script by `$SLURM_ARRAY_TASK_ID`. `array_key` says which experiments may share an array
(everything in the script but the per-trial values); `render_array_script` is a pure
function like `render_batch_script`, from the same values (`script_values`), launcher
(launch.sh.j2) and body (run.sh.j2).

SLURM writes a task's output to `<links>/<i>/slurm-%A_%a.out`, where `<links>/<i>` is a
symbolic link to task i's run directory (made by the caller, `link_run_dirs`), so the
output of every task, SLURM's own messages included, lands in its trial's run directory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from rlops.api.experiment import RLExperiment
from rlops.backends.slurm import container
from rlops.backends.slurm.render import ArrayTask, python, script_values
from rlops.backends.slurm.script import (
    JOB_PREFIX,
    TEMPLATES,
    ScriptError,
    directive,
    directives,
    extra_directives,
    safe_path,
    slurm_placement,
)
from rlops.backends.slurm.settings import SlurmSettings

ARRAY_COMMENT = "rlops-array="
LINKS_DIR = ".slurm-arrays"  # next to the run directories: <parent>/.slurm-arrays/<job name>/<i>
# Directives that differ per experiment: the array sets them once for all its tasks.
PER_JOB = ("job-name", "comment", "output", "chdir")


def shared_directives(experiment: RLExperiment) -> list[str]:
    """The `#SBATCH` options of the experiment that do not name it or its run directory."""
    placeholder = Path("/run")  # Its run directory only reaches the per-job directives.
    every = directives(experiment, placeholder)
    return [d for d in every if d[2:].split("=", 1)[0] not in PER_JOB]


def array_key(task: ArrayTask, settings: SlurmSettings) -> tuple[object, ...]:
    """Experiments with equal keys render the same script but for their table rows."""
    experiment = task.experiment
    slurm = slurm_placement(experiment)
    return (
        tuple(shared_directives(experiment)),
        tuple(extra_directives(slurm)),
        container.launcher(experiment, settings),
        tuple(container.storage_binds(experiment)),
        python(experiment, settings),
        int(slurm.max_requeues),
        experiment.spec.resources.nodes > 1,
    )


def array_name(tasks: Sequence[ArrayTask]) -> str:
    """`rlops-array-<uid12>`, from the tasks' run directories, attempts and pause points: a
    second runner looks this name up before it submits the same array again."""
    rows = "\n".join(
        f"{t.run_dir.resolve()}\t{t.attempt}" + (f"\t{t.pause_at}" if t.pause_at else "")
        for t in tasks
    )
    return f"{JOB_PREFIX}-array-{hashlib.sha256(rows.encode()).hexdigest()[:12]}"


def links_dir(tasks: Sequence[ArrayTask]) -> Path:
    """Where the array's links to its run directories go: beside the first run directory."""
    return tasks[0].run_dir.parent / LINKS_DIR / array_name(tasks)


def link_run_dirs(tasks: Sequence[ArrayTask]) -> Path:
    """Make `<links>/<i>` -> run directory of task i (before sbatch); returns `<links>`."""
    links = links_dir(tasks)
    links.mkdir(parents=True, exist_ok=True)
    for i, task in enumerate(tasks):
        link = links / str(i)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(task.run_dir.resolve(), link)
    return links


def render_array_script(tasks: Sequence[ArrayTask], settings: SlurmSettings) -> str:
    """The array script of `tasks` (two or more with one `array_key`); raises ScriptError
    naming the field when a value is unsafe or the tasks cannot share an array."""
    if not tasks:
        raise ScriptError("an array needs at least one experiment")
    first = tasks[0]
    key = array_key(first, settings)
    for i, task in enumerate(tasks[1:], start=1):
        if array_key(task, settings) != key:
            raise ScriptError(
                f"array task {i} ({task.experiment.metadata.name}): its batch directives "
                f"differ from task 0's; only experiments with equal directives share an array"
            )
    experiment = first.experiment
    name = array_name(tasks)
    links = links_dir(tasks)
    managed = [
        directive("job-name", name),
        directive("comment", ARRAY_COMMENT + name.rsplit("-", 1)[1]),
        directive("output", safe_path(links, "array links") + "/%a/slurm-%A_%a.out"),
        directive("chdir", safe_path(links, "array links")),
        *shared_directives(experiment),
        directive("array", f"0-{len(tasks) - 1}"),
    ]
    return TEMPLATES.get_template("array.sh.j2").render(
        directives=managed,
        **script_values(tasks, settings),
        # Not $SLURM_JOB_ID: the task SLURM starts last keeps the array's own job id, and
        # requeueing that id requeues every task of the array.
        requeue_id='"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    )
