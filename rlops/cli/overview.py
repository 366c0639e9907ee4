"""What `rlops status` (and `rlops logs`, `rlops.Client`, `rlops.run`) read: views of sweeps
and experiments, from a local run directory or from a cluster.

Local runs are read from their files exactly as `rlops run` reads them, and a sweep's
status comes from the same pure sweep engine, so both agree; a cluster's resources are
read with the official client.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlops.api import RLExperimentStatus, Sweep, SweepStatus
from rlops.api.annotations import ANNOTATION_PARAMETERS
from rlops.api.base import GROUP, VERSION
from rlops.api.runinfo import read_progress, read_result
from rlops.sweep import LABEL_SWEEP

DEFAULT_ROOT = Path("rlops-runs")


class StatusError(RuntimeError):
    """Nothing to show, with the reason and what to try."""


@dataclass(frozen=True)
class ExperimentView:
    name: str
    phase: str
    backend: str = ""
    namespace: str = ""
    sweep: str = ""
    attempts: int = 0
    iteration: int = 0
    timesteps: int = 0
    episode_return: float | None = None
    objective: float | None = None
    message: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""


@dataclass(frozen=True)
class SweepView:
    name: str
    status: SweepStatus
    namespace: str = ""
    metric: str = "episode_return_mean"
    trials: tuple[ExperimentView, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Overview:
    sweeps: list[SweepView]
    experiments: list[ExperimentView]


def experiment_view(
    name: str,
    status: RLExperimentStatus,
    namespace: str = "",
    sweep: str = "",
    parameters: dict[str, Any] | None = None,
) -> ExperimentView:
    progress, result = status.progress, status.result
    return ExperimentView(
        name=name,
        namespace=namespace,
        sweep=sweep,
        phase=status.phase.value,
        backend=status.backend.value if status.backend else "",
        attempts=status.attempts,
        iteration=progress.iteration if progress else 0,
        timesteps=progress.timesteps if progress else 0,
        episode_return=progress.episode_return_mean if progress else None,
        objective=result.best_objective if result else None,
        message=status.message or "",
        parameters=parameters or {},
    )


# --- local run directories -------------------------------------------------------------


def _pid_alive(ref: str) -> bool:
    try:
        os.kill(int(ref), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def local_trial(run_dir: Path, metric: str) -> tuple[ExperimentView, Any]:
    """A trial directory of `rlops run`: its view and its TrialState for the sweep engine."""
    from rlops.runner.layout import read_record
    from rlops.runner.state import trial_state

    record = read_record(run_dir)
    if record is None:
        raise StatusError(f"{run_dir}: no trial.json; not a trial directory of `rlops run`")
    result, progress = read_result(run_dir), read_progress(run_dir)
    last = record.launches[-1] if record.launches else None
    unfinished = last is not None and last.exit_code is None and last.ended_at is None
    answered = result is not None and last is not None and result.attempt >= last.attempt
    alive = last is not None and (record.backend != "local" or _pid_alive(last.ref))
    running = unfinished and not answered and alive
    state = trial_state(record, result, progress, running=running, metric=metric)
    tip = progress[-1] if progress else None
    view = ExperimentView(
        name=record.name,
        sweep=record.labels.get(LABEL_SWEEP, ""),
        phase=state.phase.value,
        backend=record.backend,
        attempts=state.attempts,
        iteration=tip.iteration if tip else 0,
        timesteps=tip.timesteps if tip else 0,
        episode_return=tip.episode_return_mean if tip else None,
        objective=state.objective,
        message=result.message if result and state.phase.finished else "",
        parameters=dict(record.parameters),
        run_dir=str(run_dir),
    )
    return view, state


def local_sweep(directory: Path) -> SweepView:
    import yaml

    from rlops.runner.layout import SweepLayout
    from rlops.sweep import plan

    layout = SweepLayout(directory)
    sweep = Sweep.model_validate(yaml.safe_load(layout.manifest.read_text()))
    metric = sweep.spec.objective.metric
    views, states = [], []
    for name in layout.trial_names():
        view, state = local_trial(layout.trial(name), metric)
        views.append(view)
        states.append(state)
    status = plan(sweep.spec, directory.name, states).status
    return SweepView(directory.name, status, metric=metric, trials=tuple(views))


def local_overview(root: Path, name: str | None = None) -> Overview:
    from rlops.runner.layout import SWEEP_MANIFEST, TRIAL_RECORD

    if not root.is_dir():
        raise StatusError(f"--root: {root} is not a directory (run `rlops run` first)")
    directories = [root / name] if name else sorted(p for p in root.iterdir() if p.is_dir())
    overview = Overview([], [])
    for d in directories:
        if (d / SWEEP_MANIFEST).exists():
            overview.sweeps.append(local_sweep(d))
        elif (d / TRIAL_RECORD).exists():
            overview.experiments.append(local_trial(d, "episode_return_mean")[0])
    if name and not (overview.sweeps or overview.experiments):
        found = sorted(root.glob(f"*/trials/{name}"))
        if found:
            sweep = local_sweep(found[0].parent.parent)
            overview.experiments.extend(t for t in sweep.trials if t.name == name)
        else:
            raise StatusError(f"NAME: no sweep or experiment {name!r} under {root}")
    return overview


# --- a cluster ---------------------------------------------------------------------------


def _status_of(obj: dict[str, Any], model: type[Any]) -> Any:
    try:
        return model.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        return model(message=f"unreadable status: {exc.errors()[0]['msg']}")


def cluster_overview(api: Any, namespace: str | None, name: str | None) -> Overview:
    """`api` is the official client's CustomObjectsApi; namespace None means all."""

    def listing(plural: str, selector: str = "") -> list[dict[str, Any]]:
        if namespace is None:
            body = api.list_cluster_custom_object(GROUP, VERSION, plural, label_selector=selector)
        else:
            body = api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, label_selector=selector
            )
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    def exp(obj: dict[str, Any]) -> ExperimentView:
        meta = obj["metadata"]
        status = _status_of(obj, RLExperimentStatus)
        sweep = (meta.get("labels") or {}).get(LABEL_SWEEP, "")
        annotations = meta.get("annotations") or {}
        parameters = json.loads(annotations.get(ANNOTATION_PARAMETERS) or "{}")
        return experiment_view(meta["name"], status, meta.get("namespace", ""), sweep, parameters)

    def swp(obj: dict[str, Any], with_trials: bool) -> SweepView:
        meta = obj["metadata"]
        metric = ((obj.get("spec") or {}).get("objective") or {}).get("metric")
        trials: tuple[ExperimentView, ...] = ()
        if with_trials:
            trials = tuple(
                exp(o) for o in listing("rlexperiments", f"{LABEL_SWEEP}={meta['name']}")
            )
        status = _status_of(obj, SweepStatus)
        return SweepView(
            meta["name"], status, meta.get("namespace", ""), metric or "episode_return_mean", trials
        )

    if name is None:
        sweeps = [swp(o, False) for o in listing("sweeps")]
        alone = [
            exp(o)
            for o in listing("rlexperiments")
            if not o["metadata"].get("labels", {}).get(LABEL_SWEEP)
        ]
        return Overview(sweeps, alone)
    matching = [o for o in listing("sweeps") if o["metadata"]["name"] == name]
    if matching:
        return Overview([swp(matching[0], True)], [])
    experiments = [exp(o) for o in listing("rlexperiments") if o["metadata"]["name"] == name]
    if not experiments:
        where = f"namespace {namespace}" if namespace else "any namespace"
        raise StatusError(f"NAME: no Sweep or RLExperiment {name!r} in {where}")
    return Overview([], experiments)


def kube_api(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """CustomObjectsApi and the context's namespace (lazy import of the client)."""
    import kubernetes.client
    import kubernetes.config

    try:
        config = kubernetes.config
        client = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        if context:
            active = next((c for c in contexts if c["name"] == context), active)
    except (kubernetes.config.ConfigException, FileNotFoundError) as exc:
        raise StatusError(f"--kubeconfig: no usable Kubernetes configuration ({exc})") from exc
    namespace = (active or {}).get("context", {}).get("namespace") or "default"
    return kubernetes.client.CustomObjectsApi(client), namespace
