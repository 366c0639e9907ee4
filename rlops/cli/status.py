"""`rlops status [NAME]`: sweeps and experiments, from a cluster or a local run directory.

Local runs (`--root`, default ./rlops-runs) are read from their files exactly as
`rlops run` reads them, and a sweep's status comes from the same pure sweep engine,
so both agree. With `--kubeconfig`, `--context`, `-n` or `-A` (or when there is no
local run directory) it reads the resources from the cluster with the official
client. NAME narrows to one sweep (with its trials) or one experiment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rlops.cli.output import add_output_argument, dump
from rlops.cli.overview import (
    DEFAULT_ROOT,
    ExperimentView,
    Overview,
    StatusError,
    SweepView,
    cluster_overview,
    kube_api,
    local_overview,
)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def sweep_table(sweeps: Sequence[SweepView], namespaces: bool, wide: bool = False) -> Table:
    table = Table(title="Sweeps", title_justify="left")
    columns = ["NAMESPACE"] if namespaces else []
    columns += ["SWEEP", "PHASE", "TRIALS", "PEND", "RUN", "PAUSE", "OK", "FAIL", "STOP"]
    columns += ["BACKENDS"]
    columns += ["METRIC", "STARTED", "COMPLETED"] if wide else []
    columns += ["BEST", "OBJECTIVE", "MESSAGE"]
    for c in columns:
        table.add_column(c, no_wrap=c != "MESSAGE")
    for s in sweeps:
        t, best = s.status.trials, s.status.best_trial
        backends = " ".join(f"{b}={n}" for b, n in sorted(s.status.backends.items()))
        row = [s.namespace] if namespaces else []
        row += [s.name, s.status.phase.value, str(t.total), str(t.pending), str(t.running)]
        row += [str(t.paused), str(t.succeeded), str(t.failed), str(t.stopped), backends or "-"]
        if wide:
            row += [s.metric, s.status.started_at or "-", s.status.completed_at or "-"]
        row += [best.name if best else "-", _num(best.objective if best else None)]
        row += [s.status.message or ""]
        table.add_row(*row)
    return table


def experiment_table(
    title: str, experiments: Iterable[ExperimentView], namespaces: bool, wide: bool = False
) -> Table:
    table = Table(title=title, title_justify="left")
    columns = ["NAMESPACE"] if namespaces else []
    columns += ["EXPERIMENT", "PHASE", "BACKEND", "ATTEMPTS", "ITER", "TIMESTEPS", "RETURN"]
    columns += ["OBJECTIVE"]
    columns += ["SWEEP", "PARAMETERS"] if wide else []
    columns += ["MESSAGE"]
    for c in columns:
        table.add_column(c, no_wrap=c not in ("MESSAGE", "PARAMETERS"))
    for e in experiments:
        row = [e.namespace] if namespaces else []
        row += [e.name, e.phase, e.backend or "-", str(e.attempts), str(e.iteration)]
        row += [str(e.timesteps), _num(e.episode_return), _num(e.objective)]
        if wide:
            params = " ".join(f"{k}={v}" for k, v in sorted(e.parameters.items()))
            row += [e.sweep or "-", params or "-"]
        row += [e.message]
        table.add_row(*row)
    return table


def overview_data(overview: Overview) -> dict[str, Any]:
    """The overview as plain data (`-o json|yaml`): camelCase keys, as the API writes them."""

    def experiment(e: ExperimentView) -> dict[str, Any]:
        return {
            "name": e.name,
            "namespace": e.namespace or None,
            "sweep": e.sweep or None,
            "phase": e.phase,
            "backend": e.backend or None,
            "attempts": e.attempts,
            "iteration": e.iteration,
            "timesteps": e.timesteps,
            "episodeReturnMean": e.episode_return,
            "objective": e.objective,
            "parameters": e.parameters,
            "runDir": e.run_dir or None,
            "message": e.message or None,
        }

    sweeps = [
        {
            "name": s.name,
            "namespace": s.namespace or None,
            "metric": s.metric,
            "status": s.status.model_dump(mode="json", by_alias=True, exclude_none=True),
            "trials": [experiment(t) for t in s.trials],
        }
        for s in overview.sweeps
    ]
    return {"sweeps": sweeps, "experiments": [experiment(e) for e in overview.experiments]}


def render(console: Console, overview: Overview, namespaces: bool, wide: bool = False) -> None:
    if overview.sweeps:
        console.print(sweep_table(overview.sweeps, namespaces, wide))
    for s in overview.sweeps:
        if s.trials:
            console.print(experiment_table(f"Trials of {s.name}", s.trials, namespaces, wide))
    if overview.experiments:
        console.print(experiment_table("Experiments", overview.experiments, namespaces, wide))
    if not (overview.sweeps or overview.experiments):
        console.print("no sweeps or experiments")


# --- the command -------------------------------------------------------------------------


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """--root for local runs; --kubeconfig/--context/-n/-A for a cluster."""
    p.add_argument("--root", type=Path, help="Local run directory root (default: ./rlops-runs).")
    p.add_argument("--kubeconfig", help="Read from this cluster (default: $KUBECONFIG).")
    p.add_argument("--context", help="kubeconfig context.")
    p.add_argument("-n", "--namespace", help="Namespace (default: the context's).")


def use_cluster(args: argparse.Namespace) -> bool:
    """A cluster when asked (or always, as `kubectl rlops`); else local runs if any."""
    if getattr(args, "cluster", False):
        return True
    explicit = (
        args.kubeconfig or args.context or args.namespace or getattr(args, "all_namespaces", False)
    )
    return not args.root and bool(explicit or not DEFAULT_ROOT.is_dir())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="Show sweeps and experiments (cluster or local runs).")
    p.add_argument("name", nargs="?", metavar="NAME", help="One sweep (with trials) or experiment.")
    add_source_arguments(p)
    p.add_argument("-A", "--all-namespaces", action="store_true", help="Every namespace.")
    add_output_argument(p)
    p.set_defaults(handler=run)


def read_overview(args: argparse.Namespace) -> tuple[Overview, bool]:
    """The overview the arguments ask for, and whether it spans namespaces."""
    if use_cluster(args):
        api, default_namespace = kube_api(args.kubeconfig, args.context)
        namespace = None if args.all_namespaces else args.namespace or default_namespace
        return cluster_overview(api, namespace, args.name), namespace is None
    return local_overview(args.root or DEFAULT_ROOT, args.name), False


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    try:
        overview, namespaces = read_overview(args)
    except StatusError as exc:
        console.print(f"✗ {exc}", markup=False)
        return 1
    if args.output in ("json", "yaml"):
        dump(overview_data(overview), args.output)
    else:
        render(console, overview, namespaces, wide=args.output == "wide")
    return 0
