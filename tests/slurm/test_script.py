"""The batch script renderer: golden files (single-node, multi-node, apptainer + --nv, a local
.sif file, podman with a storage path), shell
syntax (`bash -n`), quoting of every value, and rejection of unsafe directives and paths.

Regenerate the golden files on purpose with `pytest tests/slurm --update-golden`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rlops.api import RLExperiment, validate_manifest
from rlops.backends.slurm import (
    ScriptError,
    SlurmSettings,
    job_name,
    render_batch_script,
    render_for_manifest,
)
from tests.builders import experiment
from tests.golden import Golden
from tests.waiting import wait_until

GOLDEN = Path(__file__).parent / "golden"
RUN_DIR = Path("/shared/rlops-runs/team/cartpole")
SETTINGS = SlurmSettings(run_root=Path("/shared/rlops-runs"), python="/opt/rlops/bin/python")
UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def with_uid(body: dict[str, Any], namespace: str = "team") -> RLExperiment:
    body["metadata"].update(uid=UID, namespace=namespace)
    return RLExperiment.model_validate(body)


CASES: dict[str, dict[str, Any]] = {
    "single-node": experiment("cartpole")
    .slurm(partition="debug", timeLimit="00:30:00", maxRequeues=2, signalSeconds=90)
    .obj(),
    "multi-node": experiment("cartpole")
    .set("spec.resources", {"envRunners": 70, "nodes": 2, "memory": "64Gi"})
    .slurm(
        partition="standard",
        account="rl-project",
        qos="high",
        timeLimit="1-00:00:00",
        extraDirectives=["--exclusive", "--mail-type=END"],
    )
    .obj(),
    "apptainer-gpu": experiment("cartpole")
    .set("spec.image", "ghcr.io/acme/rl:1.2")
    .set("spec.resources", {"envRunners": 4, "learners": 1, "gpusPerLearner": 1})
    .slurm(
        containerRuntime="apptainer",
        containerOptions=["--nv", "--bind=/data"],
        timeLimit="02:00:00",
        maxRequeues=3,
        constraint="a100|h100",
    )
    .obj(),
    "apptainer-sif": experiment("cartpole")
    .set("spec.image", "/scratch/images/rlops-0.1.0.sif")
    .slurm(containerRuntime="singularity", timeLimit="02:00:00")
    .obj(),
    "podman": experiment("cartpole")
    .set("spec.image", "localhost/rlops:0.1.0")
    .set("spec.storage", {"path": "/shared/rlops-runs"})
    .slurm(
        containerRuntime="podman",
        containerOptions=["--shm-size=2g"],
        timeLimit="02:00:00",
        maxRequeues=1,
    )
    .obj(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, golden: Golden) -> None:
    body = CASES[case]
    assert validate_manifest(body) == []
    golden.check(GOLDEN / f"{case}.sh", render_batch_script(with_uid(body), RUN_DIR, SETTINGS))


@pytest.mark.parametrize("case", sorted(CASES))
def test_script_is_valid_bash(case: str) -> None:
    script = render_batch_script(with_uid(CASES[case]), RUN_DIR, SETTINGS)
    out = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("attempt", "restarts", "want"), [(1, 0, 1), (1, 2, 3), (3, 0, 3), (3, 2, 5)]
)
def test_attempt_counts_on_from_the_jobs_first_attempt(
    attempt: int, restarts: int, want: int
) -> None:
    """A retry's job runs attempt N; each SLURM requeue of that job is the next attempt."""
    script = render_batch_script(with_uid(CASES["single-node"]), RUN_DIR, SETTINGS, attempt=attempt)
    numbering = [line for line in script.splitlines() if line.startswith(("REQUEUES=", "ATTEMPT="))]
    assert len(numbering) == 2, numbering
    out = subprocess.run(
        ["bash", "-c", "\n".join([*numbering, 'echo "$ATTEMPT"'])],
        env={**os.environ, "SLURM_RESTART_COUNT": str(restarts)},
        text=True, capture_output=True, check=True,
    )  # fmt: skip
    assert int(out.stdout) == want


def test_a_pause_point_is_exported_and_its_absence_unsets_an_inherited_one() -> None:
    exp = with_uid(CASES["single-node"])
    assert "\nexport RLOPS_PAUSE_AT_ITERATION=9\n" in render_batch_script(
        exp, RUN_DIR, SETTINGS, pause_at=9
    )
    assert "\nunset RLOPS_PAUSE_AT_ITERATION\n" in render_batch_script(exp, RUN_DIR, SETTINGS)


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def test_directives_carry_identity_signal_and_requeue() -> None:
    exp = with_uid(CASES["single-node"])
    lines = sbatch_lines(render_batch_script(exp, RUN_DIR, SETTINGS))
    assert f"#SBATCH --job-name={job_name(exp)}" in lines
    assert job_name(exp) == "rlops-cartpole-0f1e2d3c"
    assert f"#SBATCH --comment=rlops-uid={UID}" in lines
    assert "#SBATCH --signal=B:USR1@90" in lines
    assert "#SBATCH --time=00:30:00" in lines
    assert "#SBATCH --requeue" in lines and "#SBATCH --open-mode=append" in lines
    assert f"#SBATCH --output={RUN_DIR}/slurm-%j.out" in lines


def test_multi_node_sizes_per_node() -> None:
    lines = sbatch_lines(render_batch_script(with_uid(CASES["multi-node"]), RUN_DIR, SETTINGS))
    # 70 runners + the driver = 71 CPUs over 2 nodes; 64Gi per node.
    assert "#SBATCH --nodes=2" in lines
    assert "#SBATCH --cpus-per-task=36" in lines
    assert "#SBATCH --mem=65536M" in lines
    assert lines[-2:] == ["#SBATCH --exclusive", "#SBATCH --mail-type=END"]


def test_paths_with_spaces_or_quotes_are_quoted_in_the_body() -> None:
    settings = SETTINGS.model_copy(update={"python": "/opt/my env/bin/python'; rm -rf ~"})
    script = render_batch_script(with_uid(CASES["single-node"]), RUN_DIR, settings)
    assert "PYTHON=('/opt/my env/bin/python'\"'\"'; rm -rf ~')" in script


@pytest.mark.parametrize(
    "field, value",
    [
        ("partition", "debug\n#SBATCH --uid=0"),
        ("partition", "debug;reboot"),
        ("account", "acct$(id)"),
        ("qos", "high `id`"),
        ("constraint", "a100\nrm -rf /"),
        ("timeLimit", "10; id"),
    ],
)
def test_malicious_directive_values_are_rejected(field: str, value: str) -> None:
    body = experiment("evil").slurm(**{field: value}).obj()
    errors = validate_manifest(body)
    assert any(e.path == f"spec.placement.slurm.{field}" for e in errors), errors
    # The renderer refuses them too, even when the validator was bypassed.
    with pytest.raises(ScriptError, match=field.lower().replace("timelimit", "time")):
        render_batch_script(with_uid(body), RUN_DIR, SETTINGS)


@pytest.mark.parametrize(
    "directive",
    ["--mail-user=a@b.c;id", "--wrap=id", "--job-name=other", "--export=ALL\n#SBATCH --x", "-x"],
)
def test_malicious_extra_directives_are_rejected(directive: str) -> None:
    body = experiment("evil").slurm(extraDirectives=[directive]).obj()
    assert any("extraDirectives.0" in e.path for e in validate_manifest(body))
    with pytest.raises(ScriptError, match=r"extraDirectives\.0"):
        render_batch_script(with_uid(body), RUN_DIR, SETTINGS)


def test_unsafe_run_dir_is_rejected() -> None:
    with pytest.raises(ScriptError, match="output"):
        render_batch_script(with_uid(CASES["single-node"]), Path("/tmp/a b"), SETTINGS)


def test_render_for_manifest_uses_the_run_root() -> None:
    script = render_for_manifest(with_uid(CASES["single-node"]), SETTINGS)
    assert re.search(r"^RUN_DIR=/shared/rlops-runs/team/cartpole$", script, re.M)


STUB_RUNTIME = """\
import os, pathlib, signal, sys, time
def end(*_):
    sys.exit(75)  # checkpointed
signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ["STUB_IGNORES_TERM"] else end)
pathlib.Path(os.environ["STUB_READY"]).touch()
time.sleep(120)
"""


@pytest.mark.parametrize(("ignores_term", "grace", "code"), [(False, 60, 75), (True, 1, 137)])
def test_term_to_the_batch_shell_reaches_the_runtime_and_a_hung_one_is_killed(
    tmp_path: Path, ignores_term: bool, grace: int, code: int
) -> None:
    """A stop or pause signals the batch shell alone: it forwards TERM to the runtime and
    exits with its code (75: checkpointed) at once; a runtime that ignores TERM is killed
    once the grace period has passed."""
    stub = tmp_path / "python"
    stub.write_text(f"#!{sys.executable}\n{STUB_RUNTIME}")
    stub.chmod(0o755)
    settings = SETTINGS.model_copy(update={"python": str(stub), "stop_grace_seconds": grace})
    script = tmp_path / "batch.sh"
    script.write_text(render_batch_script(with_uid(CASES["single-node"]), tmp_path, settings))
    ready = tmp_path / "ready"
    env = {**os.environ, "SLURM_JOB_ID": "7", "STUB_READY": str(ready),
           "STUB_IGNORES_TERM": "1" if ignores_term else ""}  # fmt: skip
    shell = subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE, text=True)
    wait_until(lambda: ready.exists() or shell.poll() is not None, 30, "the runtime to start")
    assert shell.poll() is None, "the batch shell ended before its runtime started"
    signalled = time.monotonic()
    shell.send_signal(signal.SIGTERM)
    out, _ = shell.communicate(timeout=30)
    waited = time.monotonic() - signalled
    assert shell.returncode == code and f"rlops: runtime exited {code} " in out, out
    assert waited >= grace if ignores_term else waited < grace


@pytest.mark.parametrize(
    ("runtime", "image", "want"),
    [
        ("apptainer", "ghcr.io/acme/rl:1.2", "docker://ghcr.io/acme/rl:1.2"),
        ("apptainer", "/scratch/rl.sif", "/scratch/rl.sif"),
        ("singularity", "./rl.sif", "./rl.sif"),
        ("apptainer", "oras://ghcr.io/acme/rl:1.2", "oras://ghcr.io/acme/rl:1.2"),
        ("podman", "localhost/rlops:0.1.0", "localhost/rlops:0.1.0"),
        ("podman", "docker://ghcr.io/acme/rl:1.2", "ghcr.io/acme/rl:1.2"),
    ],
)
def test_each_runtime_gets_the_image_reference_it_takes(
    runtime: str, image: str, want: str
) -> None:
    body = experiment("cartpole").set("spec.image", image).slurm(containerRuntime=runtime).obj()
    script = render_batch_script(with_uid(body), RUN_DIR, SETTINGS)
    run = [line for line in script.splitlines() if line.startswith(("RUN=(", "RUN+=("))][-1]
    assert run.removesuffix(")").split("(", 1)[1].split()[-1] == want


def test_podman_binds_run_dir_storage_and_existing_custom_code_paths(tmp_path: Path) -> None:
    """The podman prelude, run by bash: the arguments it gives `podman run`."""
    script = (GOLDEN / "podman.sh").read_text()
    prelude = script[script.index("BINDS=(") : script.index("PYTHON=(")]
    code = tmp_path / "envs"
    code.mkdir()
    out = subprocess.run(
        ["bash", "-c", prelude + 'printf "%s\\n" "${RUN[@]}"'],
        env={**os.environ, "RUN_DIR": "/shared/rlops-runs/team/cartpole",
             "RLOPS_PYTHONPATH": f"{code}:{tmp_path / 'missing'}"},
        text=True, capture_output=True, check=True,
    )  # fmt: skip
    args = out.stdout.splitlines()
    assert args[:3] == ["podman", "run", "--rm"]
    assert {"--network=host", "--init", "--env=RLOPS_*", "--env=SLURM_*"} <= set(args)
    volumes = [a for a in args if a.startswith("--volume=")]
    assert volumes == [
        "--volume=/shared/rlops-runs:/shared/rlops-runs",
        "--volume=/shared/rlops-runs/team/cartpole:/shared/rlops-runs/team/cartpole",
        f"--volume={code}:{code}",
    ]
    user = "--user=0:0" if os.geteuid() == 0 else "--userns=keep-id"
    assert user in args
    assert args[-2:] == ["--shm-size=2g", "localhost/rlops:0.1.0"]
