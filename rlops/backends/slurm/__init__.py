"""The SLURM backend: batch scripts (pure), job states (pure) and SLURM clients.

`render_batch_script` renders an experiment's sbatch script, `job_phase` maps a job's
state onto the experiment's phase, `CliSlurmClient` and `RestSlurmClient` talk to
SLURM behind one `SlurmClient` protocol, and `SlurmBackend` submits, observes and
cancels experiments through either; `SlurmExperiments` is the `ExperimentBackend` over
it that the bridge drives. `render_array_script` and `SlurmBackend.submit_array`
carry several experiments with the same directives as one job array, `render_pack_script`
several side by side in one job; all three render from one core (`render.script_values`)
with one launcher (templates/launch.sh.j2).
"""

from rlops.backends.slurm.array import array_key, array_name, render_array_script
from rlops.backends.slurm.backend import SCRIPT_FILE, SlurmBackend, experiment_phase
from rlops.backends.slurm.cli_client import CliSlurmClient, parse_squeue
from rlops.backends.slurm.client import (
    CommandObserver,
    JobObservation,
    SlurmClient,
    SlurmRefused,
    SlurmUnavailable,
    SubmitError,
)
from rlops.backends.slurm.experiments import SlurmExperiments
from rlops.backends.slurm.observe import (
    observe_job,
    queue_wait_seconds,
    slurm_time,
)
from rlops.backends.slurm.pack import (
    PackSlot,
    pack_exit,
    pack_members,
    pack_slots,
    render_pack_script,
    request_stop,
)
from rlops.backends.slurm.render import ArrayTask, render_batch_script, render_for_manifest
from rlops.backends.slurm.rest_client import RestSlurmClient
from rlops.backends.slurm.script import (
    ScriptError,
    default_run_dir,
    job_name,
    slurm_placement,
)
from rlops.backends.slurm.settings import SlurmSettings
from rlops.backends.slurm.states import FINISHED_STATES, JobPhase, job_phase, phase_for_missing_job

__all__ = [
    "FINISHED_STATES",
    "SCRIPT_FILE",
    "ArrayTask",
    "CliSlurmClient",
    "CommandObserver",
    "JobObservation",
    "JobPhase",
    "PackSlot",
    "RestSlurmClient",
    "ScriptError",
    "SlurmBackend",
    "SlurmClient",
    "SlurmExperiments",
    "SlurmRefused",
    "SlurmSettings",
    "SlurmUnavailable",
    "SubmitError",
    "array_key",
    "array_name",
    "default_run_dir",
    "experiment_phase",
    "job_name",
    "job_phase",
    "observe_job",
    "pack_exit",
    "pack_members",
    "pack_slots",
    "parse_squeue",
    "phase_for_missing_job",
    "queue_wait_seconds",
    "render_array_script",
    "render_batch_script",
    "render_for_manifest",
    "render_pack_script",
    "request_stop",
    "slurm_placement",
    "slurm_time",
]  # fmt: skip
