"""`rlops report NAME|DIR`: plots and an index.html for a run directory.

NAME is a run under --root, or, with --kubeconfig/--context/-n (and always as
`kubectl rlops report`), an RLExperiment of the cluster whose run directory is
reachable here (--root: the storage path as mounted on this machine).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report", help="Make report/ (learning curves, objective per parameter, index.html)."
    )
    p.add_argument("target", help="A run directory, or the name of a run under --root.")
    p.add_argument("--root", type=Path, help="Where run directories are (default: ./rlops-runs).")
    p.add_argument("--kubeconfig", help="An RLExperiment of this cluster (default: $KUBECONFIG).")
    p.add_argument("--context", help="kubeconfig context.")
    p.add_argument("-n", "--namespace", help="Namespace (default: the context's).")
    p.set_defaults(handler=run)


def cluster_run_dir(args: argparse.Namespace) -> Path:
    """The run directory of an RLExperiment of the cluster, as mounted here (--root)."""
    from rlops.api import RLExperiment
    from rlops.cli.client import Client, ClientError
    from rlops.cli.logs import kubernetes_run_dir, slurm_run_dir

    resource = Client(args.namespace, args.kubeconfig, args.context).get(args.target)
    if not isinstance(resource, RLExperiment):
        raise ClientError(
            f"{args.target} is a Sweep of the cluster: report its trials one by one, or run "
            "`rlops report` on a sweep run by `rlops run`"
        )
    backend = (
        resource.status.backend_ref.kind if resource.status and resource.status.backend_ref else ""
    )
    if backend == "SlurmJob":
        return slurm_run_dir(resource, args.root)
    return kubernetes_run_dir(resource, args.root)


def run(args: argparse.Namespace) -> int:
    from rlops.cli.client import ClientError
    from rlops.cli.overview import StatusError
    from rlops.runner.report import ReportError, make_report
    from rlops.runner.session import RunnerSettings

    console = Console(highlight=False, soft_wrap=True)
    directory = Path(args.target)
    cluster = getattr(args, "cluster", False) or args.kubeconfig or args.context or args.namespace
    try:
        if cluster and not directory.is_dir():
            directory = cluster_run_dir(args)
        elif not directory.is_dir():
            directory = (args.root or RunnerSettings().runs_root) / args.target
        index = make_report(directory)
    except (ReportError, StatusError, ClientError) as exc:
        console.print(f"✗ {exc}", markup=False)
        return 1
    console.print(f"{index}", markup=False)
    return 0
