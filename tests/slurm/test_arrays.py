"""Job arrays for sweeps on SLURM.

Pure: the array script's golden file, `bash -n`, the quoted table (run directories with
spaces, quotes and `$(...)` come back exactly per task), grouping by directives, and the
parsers' array task ids (`123_4`) from squeue, scontrol and pending ranges.

On the real cluster (fake runtime, see fake_runtime.py): one sbatch for three trials, each
task in its own run directory with its own `slurm-<array>_<task>.out`; stopping one task
cancels only it while the others finish; USR1 before the time limit requeues only the
signalled task, which resumes as the next attempt; a new runner backend adopts running tasks
from the run directories' records instead of submitting again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api import Phase, RLExperiment
from rlops.api.experiment import BackendRef
from rlops.backends.base import Observation, Submission, work_key
from rlops.backends.slurm import (
    ArrayTask,
    CliSlurmClient,
    ScriptError,
    SlurmBackend,
    SlurmSettings,
    array_key,
    array_name,
    render_array_script,
)
from rlops.backends.slurm.parsers import SQUEUE_FIELDS, parse_scontrol, parse_squeue, task_ids
from rlops.backends.slurm.runs import JOB_RECORD, SlurmRunBackend
from tests.builders import experiment
from tests.golden import Golden
from tests.slurm.fake_runtime import fake_python
from tests.slurm.slurm_cluster import SlurmCluster
from tests.waiting import wait_until

GOLDEN = Path(__file__).parent / "golden"
TRIALS = Path("/shared/rlops-runs/lr/trials")
SETTINGS = SlurmSettings(run_root=Path("/shared/rlops-runs"), python="/opt/rlops/bin/python")


def trial(name: str, **slurm: Any) -> RLExperiment:
    body = experiment(name).slurm(**slurm).obj()
    body["metadata"]["uid"] = f"{name}-uid"
    return RLExperiment.model_validate(body)


def tasks(*dirs: str, **slurm: Any) -> list[ArrayTask]:
    return [ArrayTask(trial(f"lr-{i}", **slurm), TRIALS / d, 1 + i % 2) for i, d in enumerate(dirs)]


# --- pure ---------------------------------------------------------------------------------


def test_array_script_matches_its_golden_file_and_is_valid_bash(
    tmp_path: Path, golden: Golden
) -> None:
    script = render_array_script(
        tasks("lr-0", "lr-1", "lr-2", partition="debug", timeLimit="00:30:00", maxRequeues=2),
        SETTINGS,
    )
    golden.check(GOLDEN / "array.sh", script)
    assert "#SBATCH --array=0-2\n" in script
    assert f"#SBATCH --output={TRIALS}/.slurm-arrays/" in script
    (tmp_path / "array.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "array.sh")], check=True)


def table_row(script: str, task: int) -> tuple[str, str, str]:
    """What the script's table gives task `task`: its trial, run directory and attempt."""
    lines = script.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TRIALS=("))
    end = next(i for i, line in enumerate(lines) if line.startswith("SPEC="))
    program = (
        "\n".join(lines[start:end])
        + "\n"
        + ('printf "%s\\0" "${TRIALS[$TASK]}" "$RUN_DIR" "${FIRST_ATTEMPTS[$TASK]}"')
    )
    env = {"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": str(task)}
    out = subprocess.run(["bash", "-c", program], env=env, capture_output=True, check=True)
    name, run_dir, attempt, _ = out.stdout.decode().split("\0")
    return name, run_dir, attempt


def test_the_table_quotes_run_directories_exactly() -> None:
    odd = ["plain", "with space", 'it\'s "quoted"', "$(touch /tmp/pwned) `id` ;&|"]
    script = render_array_script(tasks(*odd), SETTINGS)
    for i, name in enumerate(odd):
        assert table_row(script, i) == (f"lr-{i}", str(TRIALS / name), str(1 + i % 2))
    assert not Path("/tmp/pwned").exists()


def test_apptainer_tasks_bind_their_own_run_directory(tmp_path: Path) -> None:
    script = render_array_script(
        tasks("a", "b", containerRuntime="apptainer", containerOptions=["--nv"]), SETTINGS
    )
    assert 'RUN=(apptainer exec --nv --bind="$RUN_DIR" docker://ghcr.io/rlops/rlops:0.1.0)' in (
        script
    )
    (tmp_path / "a.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "a.sh")], check=True)


def test_podman_tasks_bind_their_own_run_directory(tmp_path: Path) -> None:
    script = render_array_script(tasks("a", "b", containerRuntime="podman"), SETTINGS)
    assert 'BINDS=("$RUN_DIR")' in script
    assert "RUN+=(ghcr.io/rlops/rlops:0.1.0)" in script
    (tmp_path / "a.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "a.sh")], check=True)


def test_only_equal_directives_share_an_array() -> None:
    a, b = tasks("a", "b", partition="debug")
    (c,) = tasks("c", partition="gpu")
    assert array_key(a, SETTINGS) == array_key(b, SETTINGS)
    assert array_key(a, SETTINGS) != array_key(c, SETTINGS)
    with pytest.raises(ScriptError, match=r"task 1 .*differ"):
        render_array_script([a, c], SETTINGS)


def test_the_array_name_depends_on_run_directories_and_attempts() -> None:
    a, b = tasks("a", "b")
    assert array_name([a, b]) == array_name(tasks("a", "b"))
    assert array_name([a, b]) != array_name([b, a])
    retried = ArrayTask(a.experiment, a.run_dir, a.attempt + 1)
    assert array_name([retried, b]) != array_name([a, b])
    # A resume of the same attempts pauses at the next rung: another array, never the
    # ended one of the launch that paused at the first.
    at_rung = [ArrayTask(t.experiment, t.run_dir, t.attempt, pause_at=3) for t in (a, b)]
    at_next = [ArrayTask(t.experiment, t.run_dir, t.attempt, pause_at=9) for t in (a, b)]
    assert len({array_name([a, b]), array_name(at_rung), array_name(at_next)}) == 3


def test_each_task_exports_its_own_pause_point() -> None:
    a, b, c = tasks("a", "b", "c")
    script = render_array_script([a, ArrayTask(b.experiment, b.run_dir, 2, pause_at=7), c],
                                 SETTINGS)  # fmt: skip
    assert "\nPAUSE_ATS=(0 7 0)\n" in script
    lines = [line for line in script.splitlines() if line.startswith("PAUSE_ATS=")]
    block = script[script.index("if (( PAUSE_ATS") :].split("\nfi\n")[0] + "\nfi"
    for task, want in enumerate(["unset", "7", "unset"]):
        shell = [*lines, f"TASK={task}", "RLOPS_PAUSE_AT_ITERATION=stale", block,
                 'echo "${RLOPS_PAUSE_AT_ITERATION-unset}"']  # fmt: skip
        out = subprocess.run(["bash", "-uc", "\n".join(shell)], capture_output=True, text=True)
        assert out.stdout.strip() == want, out.stderr


def squeue_line(job: str, state: str, array_job: str, array_task: str) -> str:
    values = [job, state, "None", "0", "0", "N/A", "N/A", "N/A", "", "(null)", array_job,
              array_task, "rlops-array-x|"]  # fmt: skip
    assert len(values) == len(SQUEUE_FIELDS)
    return "|".join(values)


def test_parsers_name_array_tasks_by_array_job_and_task() -> None:
    out = "\n".join([
        squeue_line("12", "RUNNING", "10", "2"),
        squeue_line("10", "PENDING", "10", "3-4%2"),
        squeue_line("9", "COMPLETED", "9", "N/A"),
    ])  # fmt: skip
    seen = {j.job_id: j.raw_id for j in parse_squeue(out)}
    assert seen == {"10_2": "12", "10_3": "10", "10_4": "10", "9": "9"}
    line = "JobId=10 ArrayJobId=10 ArrayTaskId=0,2-3 JobName=x JobState=PENDING Restarts=0"
    assert [j.job_id for j in parse_scontrol(line)] == ["10_0", "10_2", "10_3"]
    assert task_ids("5") == [5] and task_ids("N/A") == [] and task_ids("1-2%1") == [1, 2]


# --- on the real cluster ----------------------------------------------------------------


def launch_requests(root: Path, python: Path, count: int, **stop: int) -> list[Submission]:
    requests = []
    for i in range(count):
        run_dir = root / "trials" / f"t-{i}"
        run_dir.mkdir(parents=True)
        body = experiment(f"t-{i}").slurm(python=str(python), maxRequeues=1).obj()
        body["spec"]["stop"] = stop or {"iterations": 10}
        body["spec"]["environment"]["config"] = {"seconds_per_iteration": 0.3}
        (run_dir / "spec.yaml").write_text(yaml.safe_dump(body))
        requests.append(Submission(RLExperiment.model_validate(body), 1, run_dir=run_dir))
    return requests


def counted(settings: SlurmSettings, cluster: SlurmCluster) -> tuple[SlurmRunBackend, list[str]]:
    commands: list[str] = []
    client = CliSlurmClient(settings, env=cluster.env, observer=lambda c, s, ok: commands.append(c))
    return SlurmRunBackend(SlurmBackend(client, settings), arrays=True), commands


def job_ids(backend: SlurmRunBackend, requests: list[Submission]) -> list[str]:
    """Submit them together: the job (array task) id of each."""
    refs = backend.submit_many(requests)
    assert all(isinstance(ref, BackendRef) for ref in refs), refs
    return [ref.job_id or "" for ref in refs if isinstance(ref, BackendRef)]


def run_dir(request: Submission) -> Path:
    assert request.run_dir is not None
    return request.run_dir


def job(job_id: str) -> BackendRef:
    return BackendRef(kind="SlurmJob", job_id=job_id)


def exits(ended: dict[str, Observation]) -> dict[str, int | None]:
    """The exit code of each that succeeded (None: it did not)."""
    return {n: w.exit_code if w.phase is Phase.SUCCEEDED else None for n, w in ended.items()}


def wait_ended(
    backend: SlurmRunBackend, requests: list[Submission], timeout: float
) -> dict[str, Observation]:
    """How each one's job ended, by trial name."""
    ended: dict[str, Observation] = {}

    def all_ended() -> bool:
        seen = backend.observe([(r.experiment, None) for r in requests])
        for r in requests:
            work = seen.get(work_key(r.experiment))
            if work is not None and work.terminal:
                ended.setdefault(r.experiment.metadata.name or "", work)
        return len(ended) == len(requests)

    wait_until(all_ended, timeout, "every array task to end")
    return ended


def progress(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "progress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def squeue(cluster: SlurmCluster, array: str, fields: str) -> subprocess.CompletedProcess[str]:
    """Every task of `array`, finished ones included, one per line."""
    return cluster.run("squeue", "-h", "-r", "--states=all", f"--jobs={array}", "-O", fields)


def running(cluster: SlurmCluster, job: str) -> Callable[[], bool]:
    def check() -> bool:
        out = cluster.run("squeue", "-h", "-r", "-j", job, "-o", "%T")
        return out.stdout.strip() == "RUNNING"

    return check


@pytest.mark.slurm
def test_one_task_stops_while_the_others_finish(
    slurm_cluster: SlurmCluster, slurm_settings: SlurmSettings, tmp_path: Path
) -> None:
    root = slurm_settings.run_root
    runs, commands = counted(slurm_settings, slurm_cluster)
    requests = launch_requests(root, fake_python(tmp_path), 3)
    started = time.monotonic()
    ids = job_ids(runs, requests)
    assert commands.count("sbatch") == 1
    array = ids[0].partition("_")[0]
    assert ids == [f"{array}_{i}" for i in range(3)]
    for request, job_id in zip(requests, ids, strict=True):
        record = json.loads((run_dir(request) / JOB_RECORD).read_text())
        assert record == {"jobId": job_id, "attempt": 1}

    wait_until(running(slurm_cluster, ids[1]), 60, "task 1 to run")
    wait_until(lambda: len(progress(run_dir(requests[1]))) >= 1, 30, "task 1 to make progress")
    commands.clear()
    runs.end(requests[1].experiment, job(ids[1]), "stop")
    assert commands == ["squeue", "scancel"]  # its state, then TERM to its batch shell alone
    ended = wait_ended(runs, requests, 120)
    outcomes = {name: (work.phase, work.exit_code) for name, work in ended.items()}
    done, paused = Phase.SUCCEEDED, Phase.PAUSED  # t-1 ended at its checkpoint (exit 75)
    assert outcomes == {"t-0": (done, 0), "t-1": (paused, 75), "t-2": (done, 0)}
    assert len(progress(run_dir(requests[1]))) < 10
    for i, request in enumerate(requests):
        out = run_dir(request) / f"slurm-{array}_{i}.out"
        assert f"trains t-{i}" in out.read_text()  # SLURM wrote it into the trial's directory.
    assert [len(progress(run_dir(r))) for r in (requests[0], requests[2])] == [10, 10]
    states = squeue(slurm_cluster, array, "ArrayTaskID:|,State:|")
    # Task 1's runtime got the signal, checkpointed and exited 75; SLURM cancelled nothing.
    assert sorted(states.stdout.split()) == ["0|COMPLETED|", "1|FAILED|", "2|COMPLETED|"]
    assert time.monotonic() - started < 120


@pytest.mark.slurm
def test_usr1_requeues_only_its_task_which_resumes(
    slurm_cluster: SlurmCluster, slurm_settings: SlurmSettings, tmp_path: Path
) -> None:
    """What the time limit does (`--signal=B:USR1@...`), sent by hand to one task."""
    runs, commands = counted(slurm_settings, slurm_cluster)
    requests = launch_requests(slurm_settings.run_root, fake_python(tmp_path), 2)
    ids = job_ids(runs, requests)
    wait_until(running(slurm_cluster, ids[1]), 60, "task 1 to run")
    wait_until(lambda: len(progress(run_dir(requests[1]))) >= 2, 30, "task 1 to make progress")
    slurm_cluster.run("scancel", "--batch", "--signal=USR1", ids[1])
    assert exits(wait_ended(runs, requests, 150)) == {"t-0": 0, "t-1": 0}
    attempts = [[r["attempt"] for r in progress(run_dir(req))] for req in requests]
    assert set(attempts[0]) == {1}
    assert attempts[1][0] == 1 and attempts[1][-1] == 2 and len(attempts[1]) == 10
    restarts = squeue(slurm_cluster, ids[0].split("_")[0], "ArrayTaskID:|,RestartCnt:|")
    assert sorted(restarts.stdout.split()) == ["0|0|", "1|1|"]
    assert commands.count("sbatch") == 1


@pytest.mark.slurm
def test_a_new_runner_backend_adopts_running_tasks(
    slurm_cluster: SlurmCluster, slurm_settings: SlurmSettings, tmp_path: Path
) -> None:
    first, _ = counted(slurm_settings, slurm_cluster)
    requests = launch_requests(slurm_settings.run_root, fake_python(tmp_path), 2)
    ids = job_ids(first, requests)
    # A runner killed after recording: its next launches are attempt 2 of each trial.
    second, commands = counted(slurm_settings, slurm_cluster)
    again = [replace(r, attempt=2) for r in requests]
    assert job_ids(second, again) == ids
    assert commands.count("sbatch") == 0
    assert exits(wait_ended(second, again, 120)) == {"t-0": 0, "t-1": 0}
    # A retry (its failed job is `previous`) never adopts: it submits anew.
    retry = [replace(r, attempt=3, previous=(i,)) for r, i in zip(requests, ids, strict=True)]
    fresh = job_ids(second, retry)
    assert commands.count("sbatch") == 1 and fresh[0] != ids[0]
    for request, job_id in zip(retry, fresh, strict=True):
        second.cancel(request.experiment, job(job_id))
