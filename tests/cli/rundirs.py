"""Run directories as `rlops run` and the runtime leave them (rlops.runner.layout,
rlops.api.runinfo), written with the same functions, for the status and logs tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from rlops.api.runinfo import ExitCode, ProgressRecord, RunResult, progress_line
from rlops.runner.layout import Launch, SweepLayout, TrialRecord, write_record
from tests.builders import sweep


def write_sweep(root: Path, name: str, values: list[int]) -> SweepLayout:
    manifest = (
        sweep(name)
        .param("config.training.train_batch_size_per_learner", "grid", values=values)
        .set("spec.parallelism", len(values))
        .obj()
    )
    layout = SweepLayout(root / name)
    layout.root.mkdir(parents=True)
    layout.manifest.write_text(yaml.safe_dump(manifest))
    return layout


def write_trial(
    run_dir: Path,
    name: str,
    index: int,
    returns: list[float],
    exit_code: int | None,
    *,
    pid: int = 999_999,
    sweep_name: str = "",
    backend: str = "local",
    log: str = "",
) -> TrialRecord:
    """A trial with one launch; `exit_code` None means its process is still (or was) running."""
    run_dir.mkdir(parents=True)
    now = time.time()
    launch = Launch(attempt=1, kind="start", started_at=now - 60, ref=str(pid))
    if exit_code is not None:
        launch.exit_code, launch.ended_at = exit_code, now
    labels = {"rlops.dev/sweep": sweep_name} if sweep_name else {}
    record = TrialRecord(name=name, index=index, backend=backend, labels=labels, launches=[launch])
    write_record(run_dir, record)
    with (run_dir / "progress.jsonl").open("w") as f:
        for i, ret in enumerate(returns, start=1):
            f.write(
                progress_line(
                    ProgressRecord(
                        iteration=i,
                        timesteps=500 * i,
                        episode_return_mean=ret,
                        time_seconds=2.0 * i,
                        timestamp=now - 60 + i,
                    )
                )
            )
    if exit_code is not None:
        status = {0: "succeeded", ExitCode.REQUEUE: "requeue"}.get(exit_code, "failed")
        result = RunResult(
            status=status,
            exit_code=exit_code,
            message="" if exit_code == 0 else "RuntimeError: boom",
            iteration=len(returns),
            timesteps=500 * len(returns),
            episode_return_mean=returns[-1] if returns else None,
            best_episode_return_mean=max(returns) if returns else None,
        )
        (run_dir / "result.json").write_text(json.dumps(result.dump()))
    (run_dir / "attempts").mkdir()
    (run_dir / "attempts" / "1.log").write_text(log)
    return record


def spec_manifest(name: str) -> dict[str, Any]:
    from tests.builders import experiment

    return experiment(name).obj()
