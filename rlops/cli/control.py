"""`rlops stop|pause|resume|retry NAME`: steer one RLExperiment in a cluster.

Each is one merge patch of the annotations in `rlops.api.annotations` (through
`rlops.Client`), the same a Sweep writes on its trials; the operator or the SLURM
bridge acts on it, whatever the backend.
"""

from __future__ import annotations

import argparse
import sys

ACTIONS = {
    "stop": "Stop an RLExperiment for good (phase Stopped; the run checkpoints).",
    "pause": "Pause an RLExperiment: checkpoint and end as Paused until resumed.",
    "resume": "Resume a paused RLExperiment from its checkpoint.",
    "retry": "Start the next attempt of an RLExperiment from its latest checkpoint.",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action, text in ACTIONS.items():
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("name", metavar="NAME", help="The RLExperiment (a sweep's trial, too).")
        if action in ("stop", "pause"):
            p.add_argument("--reason", default="requested", help="Shown in the status message.")
        p.add_argument("--kubeconfig", help="The cluster (default: $KUBECONFIG).")
        p.add_argument("--context", help="kubeconfig context.")
        p.add_argument("-n", "--namespace", help="Namespace (default: the context's).")
        p.set_defaults(handler=run, action=action)


def run(args: argparse.Namespace) -> int:
    from rlops.cli.client import Client, ClientError
    from rlops.cli.overview import StatusError

    try:
        client = Client(args.namespace, args.kubeconfig, args.context)
        method = getattr(client, args.action)
        extra = (args.reason,) if args.action in ("stop", "pause") else ()
        experiment = method(args.name, *extra)
    except (StatusError, ClientError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    annotations = experiment.metadata.annotations
    shown = {k: v for k, v in annotations.items() if k.startswith("rlops.dev/")}
    print(f"rlexperiment/{args.name} {args.action} requested {shown}")
    return 0
