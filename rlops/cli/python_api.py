"""`rlops.run(manifest, ...)`: `rlops run` from Python, returning what it achieved.

    result = rlops.run("sweep.yaml", cpus=2, overrides=["stop.timestepsTotal=2000"])
    result.phase                      # "Succeeded"
    result.best.name, result.best.parameters, result.best.objective
    for t in result.trials: print(t.name, t.phase, t.objective, t.run_dir)

The manifest is read, overridden and validated as the command line does it, then run by
the same code (`rlops.cli.run.execute`: the runner, its packing, its shared Ray head or
SLURM jobs); the result is read back from the run directory as `rlops status` reads it.
Running again resumes, as `rlops run` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rlops.cli.overview import ExperimentView, local_overview


@dataclass(frozen=True)
class TrialResult:
    """One trial (or the experiment itself) as it ended."""

    name: str
    phase: str
    parameters: dict[str, Any] = field(default_factory=dict)
    objective: float | None = None
    run_dir: Path | None = None
    attempts: int = 0
    timesteps: int = 0
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    """What `rlops.run` achieved: the phase, the best trial and every trial."""

    name: str
    kind: str
    phase: str
    exit_code: int
    run_dir: Path
    trials: list[TrialResult]
    best: TrialResult | None
    metric: str = "episode_return_mean"

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"


def trial_result(view: ExperimentView) -> TrialResult:
    return TrialResult(
        name=view.name,
        phase=view.phase,
        parameters=dict(view.parameters),
        objective=view.objective,
        run_dir=Path(view.run_dir) if view.run_dir else None,
        attempts=view.attempts,
        timesteps=view.timesteps,
        message=view.message,
    )


def run(
    manifest: str | Path | Mapping[str, Any] | BaseModel,
    *,
    backend: str = "local",
    cpus: float | None = None,
    gpus: Sequence[int] | str | None = None,
    run_dir: str | Path | None = None,
    overrides: Iterable[str] = (),
    new: bool = False,
    force: bool = False,
    report: bool = True,
    live: bool = False,
) -> RunResult:
    """Run an RLExperiment or a Sweep (a path, a dict or a model) until it ends.

    `backend` is `local` or `slurm`; `cpus`/`gpus` what local trials are packed onto
    (default: every CPU, no GPU); `run_dir` where run directories go (`--root`, default
    ./rlops-runs; this run's is `<run_dir>/<name>`); `overrides` are `--set` strings.
    `live` draws the live table instead of plain progress lines. Invalid manifests raise
    ValueError naming the fields; a busy or changed run directory raises as `rlops run`
    refuses (RunDirConflict, LockBusy; `new`/`force` as `--new`/`--force`).
    """
    from rlops.cli import build_parser
    from rlops.cli.client import checked, manifests_of
    from rlops.cli.run import execute
    from rlops.runner.overrides import apply_overrides

    documents = manifests_of(manifest)
    if len(documents) != 1:
        raise ValueError(f"manifest: expected one RLExperiment or Sweep, found {len(documents)}")
    doc = checked(apply_overrides(documents[0], list(overrides)))
    argv = ["run", "<python>", "--backend", backend]
    if cpus is not None:
        argv += ["--cpus", str(cpus)]
    if gpus:
        argv += ["--gpus", gpus if isinstance(gpus, str) else ",".join(map(str, gpus))]
    if run_dir is not None:
        argv += ["--root", str(run_dir)]
    argv += ["--new"] * new + ["--force"] * force + ["--no-report"] * (not report)
    argv += [] if live else ["--quiet"]
    args = build_parser().parse_args(argv)  # The command line's own defaults.
    code = execute(args, doc)
    return read_result(args.root, doc, code)


def read_result(root: Path | None, doc: Mapping[str, Any], code: int) -> RunResult:
    """The run's outcome from its directory, as `rlops status` reads it."""
    from rlops.runner.session import RunnerSettings

    root = (root or RunnerSettings().runs_root).resolve()
    name = doc["metadata"]["name"]
    overview = local_overview(root, name)
    if overview.sweeps:
        sweep = overview.sweeps[0]
        trials = [trial_result(t) for t in sweep.trials]
        best_name = sweep.status.best_trial.name if sweep.status.best_trial else None
        best = next((t for t in trials if t.name == best_name), None)
        phase, kind, metric = sweep.status.phase.value, "Sweep", sweep.metric
    else:
        trials = [trial_result(e) for e in overview.experiments]
        best = trials[0] if trials and trials[0].objective is not None else None
        phase, kind, metric = trials[0].phase, "RLExperiment", "episode_return_mean"
    return RunResult(name, kind, phase, code, root / name, trials, best, metric)
