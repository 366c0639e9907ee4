"""The one render core of the SLURM scripts: a single job, an array and a pack.

Every script runs trials (`ArrayTask`); `script_values` turns them into everything a script
renders besides its directives: the per-trial tables (quoted), the first trial's own
values (a single job's) and what the trials share, the launcher above all (launch.sh.j2,
one for every script: apptainer or singularity, podman, or none). `render_batch_script`
is the single job: one trial. Arrays (array.py) and packs (pack.py) render theirs from
the same values.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlops.api.experiment import ContainerRuntime, RLExperiment
from rlops.api.runinfo import SPEC_FILE
from rlops.backends.slurm import container
from rlops.backends.slurm.script import (
    TEMPLATES,
    bind_path,
    comment_text,
    default_run_dir,
    directives,
    extra_directives,
    slurm_placement,
)
from rlops.backends.slurm.settings import SlurmSettings


@dataclass(frozen=True)
class ArrayTask:
    """One trial of a script: trained in `run_dir` as `attempt` (and its requeues);
    `pause_at`: the iteration after which it checkpoints and ends as paused (its rung);
    `previous`: job ids of its ended launches (an array holding one is never adopted)."""

    experiment: RLExperiment
    run_dir: Path
    attempt: int = 1
    pause_at: int | None = None
    previous: tuple[str, ...] = ()


def python(experiment: RLExperiment, settings: SlurmSettings) -> str:
    """The interpreter that runs rlops: the image's in a container, else the placement's."""
    slurm = slurm_placement(experiment)
    if slurm.container_runtime != ContainerRuntime.NONE:
        return settings.image_python
    return slurm.python or settings.python


def script_values(tasks: Sequence[ArrayTask], settings: SlurmSettings) -> dict[str, object]:
    """What a script of `tasks` (one or more, with one `array_key`) renders besides its
    directives; raises ScriptError naming the field when a value is unsafe."""
    first = tasks[0]
    experiment = first.experiment
    slurm = slurm_placement(experiment)
    launcher, image = container.launcher(experiment, settings)
    if launcher:
        for task in tasks:
            bind_path(task.run_dir)
    return {
        "count": len(tasks),
        "extra_directives": extra_directives(slurm),
        "trials": " ".join(
            shlex.quote(comment_text(t.experiment.metadata.name or "")) for t in tasks
        ),
        "run_dirs": "".join(f"\n  {shlex.quote(str(t.run_dir))}" for t in tasks),
        "first_attempts": " ".join(str(max(1, int(t.attempt))) for t in tasks),
        "pause_ats": " ".join(str(max(0, int(t.pause_at or 0))) for t in tasks),
        "run_dir": shlex.quote(str(first.run_dir)),
        "first_attempt": max(1, int(first.attempt)),
        "pause_at": max(0, int(first.pause_at or 0)),
        "spec_file": shlex.quote(SPEC_FILE),
        "max_requeues": int(slurm.max_requeues),
        "container": slurm.container_runtime.value if launcher else "",
        "launcher": launcher,
        "image": image,
        "podman_args": container.podman_args(experiment, settings),
        "binds": container.quoted(container.storage_binds(experiment)),
        "python": shlex.quote(python(experiment, settings)),
        "stop_grace": int(settings.stop_grace_seconds),
        "multi_node": experiment.spec.resources.nodes > 1,
        "driver_cpus": math.ceil(experiment.spec.resources.driver_cpus),
        "port_base": int(settings.ray_port_base),
    }


def render_batch_script(
    experiment: RLExperiment,
    run_dir: Path,
    settings: SlurmSettings,
    *,
    attempt: int = 1,
    pause_at: int | None = None,
) -> str:
    """The whole batch script of `attempt` (its requeues are the attempts after it), which
    pauses itself after iteration `pause_at` if given; raises ScriptError naming the field
    when a value is unsafe."""
    meta = experiment.metadata
    task = ArrayTask(experiment, run_dir, attempt, pause_at)
    return TEMPLATES.get_template("batch.sh.j2").render(
        namespace=comment_text(meta.namespace or "default"),
        name=comment_text(meta.name or "experiment"),
        uid=comment_text(meta.uid or "local"),
        directives=directives(experiment, run_dir),
        **script_values([task], settings),
    )


def render_for_manifest(experiment: RLExperiment, settings: SlurmSettings | None = None) -> str:
    """The script `rlops render` shows for a SLURM-placed experiment (default run dir)."""
    settings = settings or SlurmSettings()
    return render_batch_script(experiment, default_run_dir(experiment, settings), settings)
