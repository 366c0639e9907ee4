"""`rlops run FILE`: train an RLExperiment or a Sweep on this machine, resumably.

rlops run sweep.yaml                                  # trials packed onto the CPUs
rlops run experiment.yaml --set spec.config.training.lr=0.001,0.0001   # a quick grid
rlops run sweep.yaml --cpus 8 --gpus 0,1 --quiet      # CI / log files

Local trials share one Ray head that the run starts (and stops); --isolated-ray gives
each trial a Ray of its own, --ray-address connects them to a running cluster.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

from rich.console import Console

from rlops.api import RLExperiment, Sweep
from rlops.api.manifests import ManifestError, load_documents, load_one
from rlops.api.validation import validate_manifest


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="Run an RLExperiment or a Sweep here (resumes when run again).",
        description="Run an RLExperiment or a Sweep on this machine. State lives in "
        "<root>/<name>/; running the same file again resumes it.",
    )
    p.add_argument("file", type=Path, help="An RLExperiment or Sweep manifest.")
    add_set_argument(p)
    p.add_argument("--root", type=Path, help="Where run directories go (default: ./rlops-runs).")
    p.add_argument(
        "--backend", choices=["local", "slurm"], default="local", help="Where trials run."
    )
    p.add_argument(
        "--cpus", type=float, default=None, help="CPUs to pack trials onto (default: all)."
    )
    p.add_argument("--gpus", default="", help="GPU device ids to use, e.g. 0,1 (default: none).")
    ray = p.add_mutually_exclusive_group()
    ray.add_argument(
        "--isolated-ray",
        action="store_true",
        help="Local backend: each trial process starts a Ray of its own (slower start, "
        "15-25 s a trial) instead of connecting to the one Ray head this run starts "
        "for all its trials.",
    )
    ray.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Local backend: trials connect to this running Ray cluster (one this machine "
        "belongs to, e.g. started with `ray start --head`; `auto` finds it) instead of "
        "a head this run starts. Trials are still packed onto --cpus/--gpus.",
    )
    p.add_argument(
        "--no-slurm-array",
        dest="slurm_arrays",
        action="store_false",
        default=None,
        help="SLURM backend: one sbatch per trial. By default trials started together with "
        "equal batch directives (a sweep's round) are submitted as one job array, one task "
        "per trial (setting: RLOPS_SLURM_ARRAYS=false).",
    )
    fresh = p.add_mutually_exclusive_group()
    fresh.add_argument(
        "--new", action="store_true", help="Start afresh; an earlier run is moved aside."
    )
    fresh.add_argument(
        "--force", action="store_true", help="Resume even though the manifest changed."
    )
    p.add_argument("--quiet", "-q", action="store_true", help="Plain log lines, no live table.")
    p.add_argument("--no-report", action="store_true", help="Skip the report/ plots.")
    p.set_defaults(handler=run)


def add_set_argument(p: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE` (repeatable), read by `rlops.runner.overrides` (run, validate, render)."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a value by dotted path (list indices allowed; values are YAML). "
        "KEY=A,B sweeps a template value over A and B.",
    )


def effective_documents(path: Path, overrides: list[str]) -> list[dict[str, Any]]:
    """Every manifest in `path` with the overrides applied (raises OverrideError/ManifestError)."""
    from rlops.runner.overrides import apply_overrides

    return [apply_overrides(doc, overrides) for doc in load_documents(path)]


def effective_manifest(path: Path, overrides: list[str]) -> dict[str, Any]:
    """The manifest in `path` with the overrides applied (raises ValueError/ManifestError)."""
    from rlops.runner.overrides import apply_overrides

    return apply_overrides(load_one(path), overrides)


def run(args: argparse.Namespace) -> int:
    from rlops.runner.overrides import OverrideError

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        manifest = effective_manifest(args.file, args.overrides)
    except (ManifestError, OverrideError) as exc:
        err.print(f"[red]✗[/red] {exc}", markup=True)
        return 2
    errors = validate_manifest(manifest)
    if errors:
        name = (manifest.get("metadata") or {}).get("name", "")
        err.print(f"[red]✗[/red] {args.file} ({manifest.get('kind')} {name}) after overrides:")
        for e in errors:
            err.print(f"    {e.path}: {e.message}", markup=False)
        return 2
    try:
        return execute(args, manifest)
    except run_errors() as exc:  # Evaluated only when something is raised.
        err.print(f"[red]✗[/red] {exc}", markup=True)
        return 2


def run_errors() -> tuple[type[Exception], ...]:
    """What a run refuses with a message: a busy or changed run directory, no room, no Ray."""
    from rlops.backends.local.rayhead import HeadError
    from rlops.backends.packing import PackingError
    from rlops.runner.rundir import RunDirConflict
    from rlops.runner.session import LockBusy

    return (RunDirConflict, LockBusy, PackingError, HeadError, ValueError)


def execute(args: argparse.Namespace, manifest: dict[str, Any]) -> int:
    """Run a valid manifest with the options of `rlops run` (also `rlops.run()`)."""
    from rlops.runner.display import LiveDisplay, PlainDisplay
    from rlops.runner.session import RunnerSettings

    settings = RunnerSettings()
    share_import_paths(args.file)
    factory = backend_factory(args, settings)
    display = PlainDisplay(settings.quiet_interval_seconds) if args.quiet else LiveDisplay()
    return _run(args, manifest, settings, factory, display)


def _run(
    args: argparse.Namespace, manifest: dict[str, Any], settings: Any, factory: Any, display: Any
) -> int:
    from rlops.runner.experiment_run import ExperimentRun
    from rlops.runner.session import RunOptions
    from rlops.runner.sweep_run import SweepRun

    options = RunOptions(
        root=(args.root or settings.runs_root).resolve(),
        force=args.force,
        new=args.new,
        report=not args.no_report,
    )
    try:
        if manifest["kind"] == "Sweep":
            sweep = Sweep.model_validate(manifest)
            return SweepRun(sweep, manifest, options, settings, display, factory).run()
        experiment = RLExperiment.model_validate(manifest)
        return ExperimentRun(experiment, manifest, options, settings, display, factory).run()
    finally:
        display.close()


def share_import_paths(manifest_file: Path) -> None:
    """Trials import user code (custom environments, command trainers' scripts) as
    `rlops train --spec` run here would: RLOPS_PYTHONPATH, the manifest's directory, the
    working directory. Made absolute, since a trial runs in its own run directory."""
    from rlops.runtime.pythonpath import import_paths

    directory = manifest_file.resolve().parent if manifest_file.is_file() else None
    paths = import_paths(os.environ.get("RLOPS_PYTHONPATH", ""), directory, Path.cwd())
    os.environ["RLOPS_PYTHONPATH"] = os.pathsep.join(paths)


def backend_factory(args: argparse.Namespace, settings: Any) -> Any:
    """Local processes packed onto --cpus/--gpus, or SLURM jobs with --backend slurm."""
    from rlops.backends.local.executor import LocalBackend
    from rlops.backends.local.rayhead import ExistingCluster, RaySource, SharedHead
    from rlops.backends.packing import Slots, parse_gpus
    from rlops.runner.session import HeldLock

    if args.backend == "slurm":
        return _slurm_factory(args.slurm_arrays)
    slots = Slots(
        args.cpus if args.cpus is not None else float(os.cpu_count() or 1), parse_gpus(args.gpus)
    )

    def make(lock: HeldLock) -> LocalBackend:
        ray: RaySource | None = None
        if args.ray_address:
            ray = ExistingCluster(args.ray_address)
        elif not args.isolated_ray:
            ray = SharedHead(
                slots.cpus,
                slots.gpu_ids,
                lock.path,
                log=lock.path.parent / "ray-head.log",
                orphan_grace_seconds=settings.stop_grace_seconds + 60,
            )
        return LocalBackend(
            slots, shlex.split(settings.trial_command), inherit_fds=(lock.fd,), ray=ray,
            warm=warm_launcher(settings, lock.fd),
        )  # fmt: skip

    return make


def warm_launcher(settings: Any, lock_fd: int) -> Any:
    """The run's warm trial launcher (RLOPS_WARM_WORKERS), for the default trial command."""
    from rlops.backends.local.warm import WarmLauncher

    if not settings.warm_workers or settings.trial_command:
        return None
    return WarmLauncher(inherit_fds=(lock_fd,))


def _slurm_factory(arrays: bool | None) -> Any:
    from rlops.backends.slurm import CliSlurmClient, RestSlurmClient, SlurmBackend, SlurmSettings
    from rlops.backends.slurm.runs import SlurmRunBackend

    slurm = SlurmSettings()
    client = (
        RestSlurmClient(socket=slurm.rest_socket, token=slurm.rest_token)
        if slurm.rest_socket is not None
        else CliSlurmClient(slurm)
    )
    backend = SlurmBackend(client, slurm)

    def make(lock: Any) -> SlurmRunBackend:
        return SlurmRunBackend(backend, arrays=arrays)

    return make
