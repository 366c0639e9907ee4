"""How a batch script runs the image: the container runtime's words, shared by the
single-job, array and pack scripts.

Apptainer/Singularity take an image reference with a transport (`docker://...`); a local
file (`/scratch/rlops.sif`, `./rlops.sif`) or a reference that names its own transport
(`oras://...`) is used as given. Podman takes the registry reference itself; the rest of
its command line (host network, the job's user, variables and bound paths) is in the
podman.sh.j2 template because it needs the job's shell.
"""

from __future__ import annotations

import shlex

from rlops.api.experiment import ContainerRuntime, RLExperiment, SlurmPlacement
from rlops.backends.slurm.settings import SlurmSettings

APPTAINER_LOCAL = (".sif", ".simg", ".img")


def image_reference(runtime: ContainerRuntime, image: str) -> str:
    """The image as `runtime` takes it on its command line."""
    if runtime == ContainerRuntime.PODMAN:
        return image.removeprefix("docker://")
    if "://" in image or image.startswith(("/", "./", "../")) or image.endswith(APPTAINER_LOCAL):
        return image
    return f"docker://{image}"


def image(experiment: RLExperiment, settings: SlurmSettings) -> str:
    """The experiment's image reference for its runtime, unquoted."""
    slurm = experiment.spec.placement.slurm or SlurmPlacement()
    return image_reference(slurm.container_runtime, experiment.spec.image or settings.default_image)


def storage_binds(experiment: RLExperiment) -> list[str]:
    """Paths podman binds besides the run directory: the spec's storage path when local."""
    path = experiment.spec.storage.path
    return [path] if path and path.startswith("/") else []


def launcher(experiment: RLExperiment, settings: SlurmSettings) -> tuple[str, str]:
    """The container command before `--bind` and the image, both quoted; empty without a
    container. The one launcher of every script (launch.sh.j2 adds the trial's --bind)."""
    slurm = experiment.spec.placement.slurm or SlurmPlacement()
    if slurm.container_runtime == ContainerRuntime.NONE:
        return "", ""
    words = [slurm.container_runtime.value, "exec", *slurm.container_options]
    return quoted(words), shlex.quote(image(experiment, settings))


def quoted(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def podman_args(experiment: RLExperiment, settings: SlurmSettings) -> str:
    """podman.sh.j2's last words (quoted): the placement's containerOptions and the image."""
    slurm = experiment.spec.placement.slurm or SlurmPlacement()
    return quoted([*slurm.container_options, image(experiment, settings)])
