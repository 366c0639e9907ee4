"""`SlurmBackend` (the API `rlops run --backend slurm` drives) on the real cluster: submit writes
the run directory and adopts an existing job instead of submitting twice, a retry with
`previous_jobs` submits anew, observe is one batched call, cancel stops the job.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlops.api import RLExperiment
from rlops.api.experiment import Phase
from rlops.backends.slurm import (
    SCRIPT_FILE,
    CliSlurmClient,
    SlurmBackend,
    SlurmSettings,
    default_run_dir,
    experiment_phase,
)
from tests.builders import experiment

pytestmark = pytest.mark.slurm


def waiting_experiment(name: str) -> RLExperiment:
    body = experiment(name).slurm(extraDirectives=["--begin=now+1hour"]).obj()
    body["metadata"].update(namespace="runner", uid=f"{name}-0000-1111-2222-333344445555")
    return RLExperiment.model_validate(body)


def test_submit_observe_cancel(cli_client: CliSlurmClient, slurm_settings: SlurmSettings) -> None:
    commands: list[str] = []
    cli_client.observer = lambda command, seconds, ok: commands.append(command)
    backend = SlurmBackend(cli_client, slurm_settings)
    first, second = waiting_experiment("one"), waiting_experiment("two")
    run_dir = default_run_dir(first, slurm_settings)
    ref = backend.submit(first, run_dir)
    assert ref.kind == "SlurmJob" and ref.cluster == "hpc" and ref.job_id
    assert yaml.safe_load((run_dir / "spec.yaml").read_text())["metadata"]["uid"].startswith("one")
    assert (run_dir / SCRIPT_FILE).read_text().startswith("#!/bin/bash")

    assert backend.submit(first, run_dir) == ref  # adopted, not submitted again
    other = backend.submit(second, default_run_dir(second, slurm_settings))
    assert commands.count("sbatch") == 2

    commands.clear()
    seen = backend.observe([ref, other])
    assert commands == ["squeue"]
    assert seen[ref.job_id].state == "PENDING"  # type: ignore[index]
    phase = experiment_phase(first, ref.job_id or "", seen[ref.job_id or ""], run_dir)
    assert phase.phase == Phase.SUBMITTED and "BeginTime" in phase.message

    backend.cancel(ref)
    backend.cancel(other)
    seen = backend.observe([ref, other])
    assert {j.state for j in seen.values()} == {"CANCELLED"}

    retry = backend.submit(first, run_dir, previous_jobs=[ref.job_id or ""])
    assert retry.job_id != ref.job_id
    backend.cancel(retry)


def test_missing_job_falls_back_to_result_json(slurm_settings: SlurmSettings) -> None:
    exp = waiting_experiment("gone")
    run_dir: Path = default_run_dir(exp, slurm_settings)
    phase = experiment_phase(exp, "424242", None, run_dir)
    assert phase.phase == Phase.FAILED and "no longer known" in phase.message
