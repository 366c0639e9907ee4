"""`rlops slurm-bridge --cluster NAME`: run RLExperiments placed on a SLURM cluster."""

from __future__ import annotations

import argparse
import logging
import signal
import uuid
from pathlib import Path
from types import FrameType

from rlops.cli.logformat import add_log_format_argument, configure_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "slurm-bridge",
        help="Run RLExperiments placed on a SLURM cluster (on a login node).",
        description=(
            "Watch RLExperiments with placement.backend=slurm and placement.slurm.cluster=NAME, "
            "submit each as a SLURM job, track every job with one batched query per poll, and "
            "write progress and results into their status. RLOPS_BRIDGE_* and RLOPS_SLURM_* "
            "variables set the defaults."
        ),
    )
    p.add_argument("--cluster", required=True, help="This SLURM cluster's name.")
    p.add_argument(
        "-n", "--namespace", action="append", default=[], metavar="NS",
        help="Watch this namespace (repeatable; default: default).",
    )  # fmt: skip
    p.add_argument("--poll-interval", type=float, default=None, metavar="S",
                   help="Seconds between polls (default 10).")  # fmt: skip
    p.add_argument("--kubeconfig", type=Path, default=None,
                   help="Kubeconfig (default: $KUBECONFIG, ~/.kube/config).")  # fmt: skip
    p.add_argument("--run-root", type=Path, default=None,
                   help="Shared path of the run directories (RLOPS_SLURM_RUN_ROOT).")  # fmt: skip
    p.add_argument(
        "--bridge-id", default=None,
        help="This bridge's stable id in the claim annotation `rlops.dev/claimed-by: "
             "<cluster>/<id>` (RLOPS_BRIDGE_BRIDGE_ID; default: the hostname). Keep it when "
             "the bridge moves to another login node; the holder of the cluster's Lease takes "
             "over claims of other ids anyway.",
    )  # fmt: skip
    p.add_argument("--no-lease", action="store_true",
                   help="Do not hold the cluster's Lease (rlops-bridge-<cluster>); only for a "
                        "single bridge whose Role has no rights on leases.")  # fmt: skip
    p.add_argument("--rest-socket", type=Path, default=None,
                   help="Use slurmrestd on this unix socket, not the commands.")  # fmt: skip
    p.add_argument("--metrics-port", type=int, default=None,
                   help="Serve Prometheus /metrics, /healthz, /readyz on this port "
                        "(RLOPS_BRIDGE_METRICS_PORT; default: off).")  # fmt: skip
    p.add_argument("--once", action="store_true", help="Poll once and exit.")
    add_log_format_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kubernetes.client
    import kubernetes.config

    from rlops.backends.slurm import CliSlurmClient, RestSlurmClient, SlurmBackend, SlurmSettings
    from rlops.backends.slurm.client import SlurmClient
    from rlops.metrics import RlopsMetrics, start_http_server
    from rlops.slurm_bridge.bridge import SlurmBridge
    from rlops.slurm_bridge.lease import KubeLease
    from rlops.slurm_bridge.settings import BridgeSettings
    from rlops.slurm_bridge.store import KubeExperimentStore

    configure_logging(args.log_format, text_format="%(asctime)s %(name)s: %(message)s")
    log = logging.getLogger("rlops.slurm_bridge")
    overrides: dict[str, object] = {"cluster": args.cluster}
    if args.namespace:
        overrides["namespaces"] = args.namespace
    if args.poll_interval is not None:
        overrides["poll_interval_seconds"] = args.poll_interval
    if args.bridge_id:
        overrides["bridge_id"] = args.bridge_id
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    settings = BridgeSettings(**overrides)  # type: ignore[arg-type]
    slurm = SlurmSettings()
    if args.run_root is not None:
        slurm = slurm.model_copy(update={"run_root": args.run_root})
    metrics = RlopsMetrics()

    def observe(command: str, seconds: float, ok: bool) -> None:
        metrics.observe_slurm_command(command, seconds, ok)

    socket = args.rest_socket or slurm.rest_socket
    client: SlurmClient = (
        RestSlurmClient(socket=socket, token=slurm.rest_token, observer=observe)
        if socket
        else CliSlurmClient(slurm, observer=observe)
    )
    api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(args.kubeconfig) if args.kubeconfig else None
    )
    lease = None
    if not args.no_lease:
        holder = f"{settings.bridge_id}:{uuid.uuid4().hex[:8]}"  # one per process, not per id
        lease = KubeLease(kubernetes.client.CoordinationV1Api(api), settings.namespaces[0],
                          settings.cluster, holder)  # fmt: skip
    bridge = SlurmBridge(
        KubeExperimentStore(kubernetes.client.CustomObjectsApi(api)),
        SlurmBackend(client, slurm),
        settings,
        metrics=metrics,
        lease=lease,
    )
    if args.once:
        report = bridge.timed_poll()
        print(
            f"tracked {report.tracked}, submitted {len(report.submitted)}, "
            f"cancelled {len(report.cancelled)}, status writes {report.status_writes}"
        )
        return 0
    server = None
    if settings.metrics_port is not None:
        server = start_http_server(
            metrics, settings.metrics_host, settings.metrics_port, ready=bridge.ready
        )
        log.info("metrics on %s/metrics", server.url)

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        bridge.run()
    finally:
        if lease is not None:
            lease.release()
        if server is not None:
            server.stop()
    return 0
