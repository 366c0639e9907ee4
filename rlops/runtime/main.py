"""`python -m rlops.runtime` / `rlops train`: train one RLExperiment into a run directory.

Exit codes (rlops.api.runinfo.ExitCode): 0 a stop criterion was met, 1 training
failed, 2 the manifest is invalid, 75 signalled and checkpointed, run me again.
result.json says the same in words.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import yaml

from rlops.api.experiment import ResourcesSpec
from rlops.api.runinfo import (
    MAX_REPORTED_STRING,
    RESULT_FILE,
    SPEC_FILE,
    ExitCode,
    RunResult,
    read_progress,
    read_result,
)
from rlops.runtime.driverlog import attempt_log, tee_output
from rlops.runtime.exploit import take_exploit
from rlops.runtime.manifest import InvalidManifest, LoadedManifest, load_manifest
from rlops.runtime.options import RuntimeSettings, build_parser
from rlops.runtime.placement import runtime_info
from rlops.runtime.pythonpath import activate, import_paths, job_pythonpath, runtime_env
from rlops.runtime.reporter import ProgressReporter
from rlops.runtime.signals import RequeueNow, SignalWatch
from rlops.runtime.storage import StoreUnreachable, put_file, run_directory

log = logging.getLogger("rlops.runtime")


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace, settings: RuntimeSettings | None = None) -> int:
    """Everything after argument parsing; returns the exit code."""
    settings = settings or RuntimeSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    where: str | None = args.run_dir or settings.run_dir
    if where is None:
        return invalid(None, ["--run-dir: required (or set RLOPS_RUN_DIR)"])
    try:
        with run_directory(where, settings.scratch_dir, settings.storage_sync_seconds) as run_dir:
            return run_in(args, settings, run_dir)
    except StoreUnreachable as exc:
        return store_unreachable(exc, args.attempt or 1, settings)


def reporter_of(settings: RuntimeSettings) -> ProgressReporter | None:
    """The progress reporter, when the runtime was given an endpoint and its token."""
    if not (settings.progress_url and settings.progress_token):
        return None
    return ProgressReporter(
        settings.progress_url, settings.progress_token, settings.progress_interval_seconds
    )


def store_unreachable(exc: StoreUnreachable, attempt: int, settings: RuntimeSettings) -> int:
    """No attempt: the run directory's object store cannot be reached. The error is the
    log's last line and the result's message; result.json goes to the store if it takes a
    write after all (a bucket that may not be listed), and to the progress endpoint."""
    result = RunResult(status="failed", exit_code=ExitCode.FAILED, message=str(exc),
                       attempt=attempt, runtime=runtime_info(None))  # fmt: skip
    text = json.dumps(result.model_dump(mode="json"), indent=1) + "\n"
    put_file(exc.uri, RESULT_FILE, text.encode())
    reporter = reporter_of(settings)
    if reporter is not None:
        message = result.message[:MAX_REPORTED_STRING]
        reporter.close(result.model_copy(update={"message": message}).model_dump(mode="json"))
    print(f"rlops: failed ({exc}); exit {result.exit_code}", file=sys.stderr, flush=True)
    return result.exit_code


def run_in(args: argparse.Namespace, settings: RuntimeSettings, run_dir: Path) -> int:
    """The attempt, in a local run directory (itself, or the mirror of an object store's)."""
    try:
        manifest = load_manifest(args.spec, args.spec_b64)
    except InvalidManifest as exc:
        return invalid(run_dir, [str(e) for e in exc.errors])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SPEC_FILE).write_text(yaml.safe_dump(manifest.raw, sort_keys=False))
    attempt = args.attempt or next_attempt(run_dir)
    reporter = reporter_of(settings)
    teeing = tee_output(attempt_log(run_dir, attempt)) if settings.driver_log else nullcontext()
    address = args.ray_address or settings.ray_address
    with teeing:
        result = train_attempt(manifest, run_dir, attempt, address, settings, reporter)
        if result.runtime is None:
            result = result.model_copy(update={"runtime": runtime_info(None)})
        write_result(run_dir, result)
        if reporter is not None:
            message = result.message[:MAX_REPORTED_STRING]  # result.json keeps all of it
            reporter.close(result.model_copy(update={"message": message}).model_dump(mode="json"))
        print(f"rlops: {result.status} ({result.message}); exit {result.exit_code}", flush=True)
    return result.exit_code


def train_attempt(
    manifest: LoadedManifest,
    run_dir: Path,
    attempt: int,
    address: str | None,
    settings: RuntimeSettings,
    reporter: ProgressReporter | None,
) -> RunResult:
    from rlops.runtime.attempt import train

    spec = manifest.experiment.spec
    exploited = take_exploit(spec, run_dir)
    if exploited is not None:
        print(f"rlops: {exploited}", flush=True)
    paths = import_paths(settings.pythonpath, manifest.directory, Path.cwd())
    if spec.command is not None:
        from rlops.runtime.command import CommandAttempt

        with SignalWatch(linger=True) as signals:
            return CommandAttempt(
                spec, run_dir, attempt, paths, settings.command_grace_seconds, signals,
                reporter, echo=print, pause_at=settings.pause_at_iteration,
            ).run()  # fmt: skip
    activate(paths)
    try:
        # Watch before Ray starts (SIGUSR1 would otherwise kill the process), and again
        # after: ray.init installs its own SIGTERM handler.
        with (
            SignalWatch(linger=True) as signals,
            ray_session(address, spec.resources, paths) as ray_nodes,
        ):
            signals.install()
            result = train(
                spec, run_dir, attempt, signals, reporter, echo=print,
                pause_at=settings.pause_at_iteration,
            )  # fmt: skip
            placed = result.runtime.env_runner_nodes if result.runtime else None
            info = runtime_info(ray_nodes, ray_head(), placed)
            return result.model_copy(update={"runtime": info})
    except RequeueNow as exc:  # a second signal outside the training loop
        return RunResult(
            status="requeue", exit_code=ExitCode.REQUEUE, message=str(exc), attempt=attempt
        )
    except SystemExit as exc:
        # Ray's own SIGTERM handler (installed by ray.init) exits while Ray starts.
        if exc.code != signal.SIGTERM:
            raise
        return RunResult(
            status="requeue",
            exit_code=ExitCode.REQUEUE,
            message="SIGTERM received while Ray started",
            attempt=attempt,
        )
    except Exception as exc:
        log.exception("the attempt failed before training")
        return RunResult(
            status="failed",
            exit_code=ExitCode.FAILED,
            message=f"{type(exc).__name__}: {exc}",
            attempt=attempt,
        )


@contextmanager
def ray_session(address: str | None, resources: ResourcesSpec, paths: list[str]) -> Iterator[int]:
    """Connect to `address`, or start a local Ray sized by `resources`; shut down after.

    Yields the number of live Ray nodes the attempt trains on.
    """
    import ray

    from rlops.runtime.algo_config import local_cpus

    env = runtime_env(paths)
    if job_pythonpath(os.environ) is not None:
        os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"  # ours includes the job's entries
    started = time.monotonic()
    if address:
        ray.init(address=address, runtime_env=env)
    else:
        ray.init(num_cpus=local_cpus(resources), include_dashboard=False, runtime_env=env)
    # Which cluster trained this attempt (the attempt log; one head serves a local sweep).
    live: list[dict[str, Any]] = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    nodes = len(live)
    print(f"rlops: Ray cluster {ray.get_runtime_context().gcs_address}", flush=True)
    print(f"rlops: {nodes} Ray node(s), ray.init took {time.monotonic() - started:.1f} s",
          flush=True)  # fmt: skip
    try:
        yield nodes
    finally:
        ray.shutdown()


def ray_head() -> str | None:
    import ray

    address: str | None = ray.get_runtime_context().gcs_address
    return address


def next_attempt(run_dir: Path) -> int:
    """One more than the last attempt recorded in the run directory."""
    last = 0
    result = read_result(run_dir)
    if result is not None:
        last = result.attempt
    records = read_progress(run_dir)
    if records:
        last = max(last, records[-1].attempt)
    return last + 1


def write_result(run_dir: Path, result: RunResult) -> None:
    """Write result.json atomically (readers never see half a file)."""
    tmp = run_dir / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(result.model_dump(mode="json"), indent=1) + "\n")
    os.replace(tmp, run_dir / RESULT_FILE)


def invalid(run_dir: Path | None, errors: list[str]) -> int:
    print("rlops: the manifest is invalid:", file=sys.stderr)
    for error in errors:
        print(f"  {error}", file=sys.stderr)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_result(
            run_dir,
            RunResult(status="invalid", exit_code=ExitCode.INVALID, message="\n".join(errors)),
        )
    return int(ExitCode.INVALID)
