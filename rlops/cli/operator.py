"""`rlops operator`: run the Kubernetes operator (kopf) with its progress and metrics servers."""

from __future__ import annotations

import argparse
import asyncio

from rlops.cli.logformat import add_log_format_argument, configure_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "operator",
        help="Run the Kubernetes operator.",
        description=(
            "Turn RLExperiments placed on Kubernetes into KubeRay RayJobs and Sweeps into "
            "trials. Settings come from RLOPS_* variables (image, storage path, secret, "
            "progress URL and ports)."
        ),
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="Serve this namespace (repeatable; globs like `team-*` allowed).",
    )
    where.add_argument("-A", "--all-namespaces", action="store_true", help="Serve every namespace.")
    p.add_argument(
        "--peering",
        default="rlops",
        help="Name of the kopf peering object replicas meet at (default: rlops).",
    )
    p.add_argument(
        "--standalone", action="store_true", help="No peering: only ever run one replica."
    )
    p.add_argument(
        "--priority",
        type=int,
        default=None,
        help="Peering priority (default: random); the highest live replica acts, others wait.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="Log every event.")
    add_log_format_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlops.api.settings import Settings
    from rlops.operator.main import Scope, run_operator

    configure_logging(args.log_format, args.verbose)
    namespaces = args.namespace or []
    if not namespaces and not args.all_namespaces:
        namespaces = ["default"]
    scope = Scope(
        namespaces=namespaces,
        clusterwide=bool(args.all_namespaces),
        peering=None if args.standalone else args.peering,
        priority=args.priority,
    )
    asyncio.run(run_operator(Settings(), scope))
    return 0
