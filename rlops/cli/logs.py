"""`rlops logs [-f] NAME`: a trial's output, wherever it ran.

- a local run (`rlops run`): `<run dir>/attempts/<n>.log`, the latest attempt;
- a SLURM job: `<run dir>/slurm-<jobid>.out` (the bridge's run directory, or the
  experiment's storage.path);
- a RayJob: the log of its driver's pod (KubeRay's submitter pod, else the Ray head);
  once the pods are gone, the copy the runtime keeps in `<run dir>/attempts/<n>.log`
  (`--root`: the operator's storage path as mounted here).

With `-f` it follows like `tail -f`, moves on to the next attempt's file when a
retry or requeue starts one, and stops once the trial has finished.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rlops.api import Phase, RLExperiment
from rlops.api.runinfo import read_result
from rlops.cli.overview import DEFAULT_ROOT, StatusError, kube_api
from rlops.cli.status import add_source_arguments, use_cluster

_ATTEMPT = re.compile(r"([0-9]+)\.log")
_SLURM_OUT = re.compile(r"slurm-([0-9]+)\.out")


def log_files(run_dir: Path) -> list[Path]:
    """The run's log files, oldest first: attempts/<n>.log by n, else slurm-<id>.out by id."""
    attempts = run_dir / "attempts"
    numbered = [
        (int(m.group(1)), p)
        for p in (attempts.iterdir() if attempts.is_dir() else ())
        if (m := _ATTEMPT.fullmatch(p.name))
    ]
    if not numbered:
        numbered = [
            (int(m.group(1)), p) for p in run_dir.iterdir() if (m := _SLURM_OUT.fullmatch(p.name))
        ]
    return [p for _, p in sorted(numbered)]


def run_dir_finished(run_dir: Path) -> bool:
    """Finished as `rlops run` sees it (trial.json), else as the runtime's result.json says."""
    if (run_dir / "trial.json").exists():
        from rlops.cli.overview import local_trial

        return Phase(local_trial(run_dir, "episode_return_mean")[0].phase).finished
    result = read_result(run_dir)
    return result is not None and result.status != "requeue"


def follow_files(
    run_dir: Path,
    finished: Callable[[], bool],
    poll_seconds: float = 0.5,
    attempt: int | None = None,
) -> Iterator[str]:
    """Text of the run's latest log as it grows; a newer attempt's file takes over."""
    current: Path | None = None
    offset = 0
    while True:
        done = finished()  # Asked before reading, so nothing written before the end is lost.
        files = log_files(run_dir)
        if attempt is not None:
            files = [p for p in files if p.name == f"{attempt}.log"]
        latest = files[-1] if files else None
        if current is not None:
            chunk = _read_from(current, offset)
            offset += len(chunk)
            if chunk:
                yield chunk.decode(errors="replace")
        if latest is not None and latest != current:
            if current is not None:
                yield f"==> {latest.relative_to(run_dir)} <==\n"
            current, offset = latest, 0
            continue
        if done:
            return
        time.sleep(poll_seconds)


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read()


def read_files(run_dir: Path, attempt: int | None) -> str:
    files = log_files(run_dir)
    if attempt is not None:
        files = [p for p in files if p.name == f"{attempt}.log"]
    if not files:
        raise StatusError(f"{run_dir}: no log yet (attempts/<n>.log or slurm-<jobid>.out)")
    return files[-1].read_text(errors="replace")


# --- where a trial's logs are ------------------------------------------------------------


def local_run_dir(root: Path, name: str) -> Path:
    if Path(name).is_dir():
        return Path(name)
    direct = root / name
    if (direct / "trial.json").exists() or (direct / "result.json").exists():
        return direct
    found = sorted(root.glob(f"*/trials/{name}"))
    if not found:
        raise StatusError(f"NAME: no run directory {name!r} under {root} (nor */trials/{name})")
    return found[0]


def driver_pod(pods: list[dict[str, Any]], rayjob: str) -> str | None:
    """The pod whose log is the training output: KubeRay's submitter (K8sJobMode), else
    the Ray head; the newest when retries left several."""

    def newest(candidates: list[dict[str, Any]]) -> str | None:
        candidates = sorted(candidates, key=lambda p: p["metadata"].get("creationTimestamp") or "")
        return candidates[-1]["metadata"]["name"] if candidates else None

    def labels(p: dict[str, Any]) -> dict[str, str]:
        return p["metadata"].get("labels") or {}

    submitters = [
        p for p in pods
        if rayjob in (labels(p).get("job-name"), labels(p).get("batch.kubernetes.io/job-name"))
    ]  # fmt: skip
    heads = [p for p in pods if labels(p).get("ray.io/node-type") == "head"]
    return newest(submitters) or newest(heads)


def slurm_run_dir(experiment: RLExperiment, root: Path | None) -> Path:
    """Where the bridge ran it: storage.path, else `<runRoot>/<namespace>/<name>`."""
    if experiment.spec.storage.path and "://" not in experiment.spec.storage.path:
        return Path(experiment.spec.storage.path)
    from rlops.backends.slurm.settings import SlurmSettings

    base = root or SlurmSettings().run_root
    return base / (experiment.metadata.namespace or "default") / (experiment.metadata.name or "")


def kubernetes_run_dir(experiment: RLExperiment, root: Path | None) -> Path:
    """Where the runtime of a RayJob wrote: `<root or the storage path>/<namespace>/<name>`."""
    from rlops.api.settings import Settings
    from rlops.backends.kuberay import run_dir

    settings = Settings(storage_path=str(root)) if root else Settings()
    if root:
        experiment = experiment.model_copy(deep=True)
        experiment.spec.storage.path = None
    return Path(run_dir(experiment, settings))


def files_logs(
    args: argparse.Namespace, run_dir: Path, finished: Callable[[], bool]
) -> Iterator[str]:
    if args.follow:
        yield from follow_files(run_dir, finished, args.poll)
    else:
        yield read_files(run_dir, None)


def cluster_logs(args: argparse.Namespace, out: Callable[[str], None]) -> None:
    import kubernetes.client

    custom, default_namespace = kube_api(args.kubeconfig, args.context)
    namespace = args.namespace or default_namespace
    try:
        body = custom.get_namespaced_custom_object(
            "rlops.dev", "v1alpha1", namespace, "rlexperiments", args.name
        )
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            raise StatusError(
                f"NAME: no RLExperiment {args.name!r} in namespace {namespace}"
            ) from exc
        raise
    experiment = RLExperiment.model_validate(body)
    status = experiment.status
    ref = status.backend_ref if status else None
    if ref is None:
        phase = status.phase.value if status else "Pending"
        raise StatusError(f"{args.name}: not started on a backend yet (phase {phase})")

    def finished() -> bool:
        latest = custom.get_namespaced_custom_object(
            "rlops.dev", "v1alpha1", namespace, "rlexperiments", args.name
        )
        return Phase((latest.get("status") or {}).get("phase", "Pending")).finished

    if ref.kind == "SlurmJob":
        run_dir = slurm_run_dir(experiment, args.root)
        if not run_dir.is_dir():
            raise StatusError(
                f"{args.name}: SLURM job {ref.job_id} on {ref.cluster} writes to {run_dir}, "
                "which is not reachable here; run `rlops logs` on the cluster's login node"
            )
        for chunk in files_logs(args, run_dir, finished):
            out(chunk)
        return
    if ref.kind != "RayJob":
        raise StatusError(f"{args.name}: ran as a local process; use `rlops logs --root DIR`")
    core = kubernetes.client.CoreV1Api(custom.api_client)
    rayjob = ref.name or args.name
    pods = core.list_namespaced_pod(namespace, label_selector=f"rlops.dev/experiment={args.name}")
    submit = core.list_namespaced_pod(namespace, label_selector=f"job-name={rayjob}")
    items = [p.to_dict() for p in [*pods.items, *submit.items]]
    for item in items:  # to_dict() is snake_case; driver_pod reads the API's camelCase.
        item["metadata"]["creationTimestamp"] = str(item["metadata"].get("creation_timestamp"))
    pod = driver_pod(items, rayjob)
    if pod is None:
        # The RayJob and its pods are gone (or not there yet): the driver's own copy.
        run_dir = kubernetes_run_dir(experiment, args.root)
        if run_dir.is_dir() and log_files(run_dir):
            for chunk in files_logs(args, run_dir, finished):
                out(chunk)
            return
        raise StatusError(
            f"{args.name}: RayJob {rayjob} has no driver pod, and its run directory {run_dir} "
            "has no log here (--root: the storage path as mounted on this machine)"
        )
    if not args.follow:
        out(core.read_namespaced_pod_log(pod, namespace))
        return
    stream: Any = core.read_namespaced_pod_log(pod, namespace, follow=True, _preload_content=False)
    for data in stream.stream():
        out(data.decode(errors="replace"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("logs", help="Print (or follow with -f) a trial's logs.")
    p.add_argument("name", metavar="NAME", help="A trial or experiment (or its run directory).")
    p.add_argument("-f", "--follow", action="store_true", help="Follow until the trial ends.")
    p.add_argument("--attempt", type=int, help="Local runs: this attempt's log (default: latest).")
    p.add_argument("--poll", type=float, default=0.5, help="Seconds between checks with -f.")
    add_source_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def out(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        if use_cluster(args) and not Path(args.name).is_dir():
            cluster_logs(args, out)
            return 0
        run_dir = local_run_dir(args.root or DEFAULT_ROOT, args.name)
        if args.follow:
            finished = lambda: run_dir_finished(run_dir)  # noqa: E731
            for chunk in follow_files(run_dir, finished, args.poll, args.attempt):
                out(chunk)
        else:
            out(read_files(run_dir, args.attempt))
    except StatusError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    return 0
