"""Validation: every error at once, each with its field path and what is allowed.

Each case is a distinct bad manifest; the test asserts the path of the error and a
fragment of the message that tells the user what is allowed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.validation import slurm_seconds, validate_manifest
from tests.builders import experiment, sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"

BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown algorithm",
        experiment().algorithm("PPOO").obj(),
        "spec.algorithm",
        "did you mean PPO",
    ),
    (
        "unknown config group",
        experiment().config("trainng", lr=0.1).obj(),
        "spec.config.trainng",
        "valid: api_stack",
    ),
    (
        "unknown config keyword",
        experiment().config("training", lrr=0.1).obj(),
        "spec.config.training.lrr",
        "did you mean lr",
    ),
    (
        "config keyword rlops manages",
        experiment().config("env_runners", num_env_runners=4).obj(),
        "spec.config.env_runners.num_env_runners",
        "spec.resources.envRunners",
    ),
    (
        "config group rlops manages",
        experiment().config("environment", env="CartPole-v1").obj(),
        "spec.config.environment",
        "spec.environment",
    ),
    (
        "negative env runners",
        experiment().set("spec.resources.envRunners", -2).obj(),
        "spec.resources.envRunners",
        ">= 0",
    ),
    (
        "zero nodes",
        experiment().set("spec.resources.nodes", 0).obj(),
        "spec.resources.nodes",
        "> 0",
    ),
    (
        "zero cpus per runner",
        experiment().set("spec.resources.cpusPerRunner", 0).obj(),
        "spec.resources.cpusPerRunner",
        "> 0",
    ),
    (
        "memory that is not a quantity",
        experiment().set("spec.resources.memory", "4 gigs").obj(),
        "spec.resources.memory",
        "4Gi",
    ),
    (
        "bad environment entry point",
        experiment().set("spec.environment", {"entryPoint": "my env.py"}).obj(),
        "spec.environment.entryPoint",
        "package.module:callable",
    ),
    (
        "both environment id and entry point",
        experiment().set("spec.environment", {"id": "CartPole-v1", "entryPoint": "a.b:c"}).obj(),
        "spec.environment",
        "exactly one",
    ),
    ("no stop criterion", experiment().stop().obj(), "spec.stop", "at least one criterion"),
    (
        "stop timesteps below one iteration's batch",
        experiment()
        .config("training", train_batch_size_per_learner=4000)
        .stop(timesteps=100)
        .obj(),
        "spec.stop.timesteps",
        "contradictory",
    ),
    (
        "wall time beyond the SLURM time limit",
        experiment().slurm(timeLimit="00:10:00").stop(wallTimeSeconds=3600).obj(),
        "spec.stop.wallTimeSeconds",
        "contradictory",
    ),
    ("name Kubernetes would reject", experiment("Bad_Name").obj(), "metadata.name", "lower-case"),
    ("name too long for a RayJob", experiment("x" * 60).obj(), "metadata.name", "at most 47"),
    (
        "partition with a newline",
        experiment().slurm(partition="gpu\n#SBATCH --account=other").obj(),
        "spec.placement.slurm.partition",
        "no spaces, newlines or shell metacharacters",
    ),
    (
        "account with shell metacharacters",
        experiment().slurm(account="proj;rm -rf ~").obj(),
        "spec.placement.slurm.account",
        "shell metacharacters",
    ),
    (
        "extra directive with command substitution",
        experiment().slurm(extraDirectives=["--mail-user=$(whoami)"]).obj(),
        "spec.placement.slurm.extraDirectives.0",
        "`--name=value`",
    ),
    (
        "extra directive rlops manages",
        experiment().slurm(extraDirectives=["--job-name=x"]).obj(),
        "spec.placement.slurm.extraDirectives.0",
        "set by rlops",
    ),
    (
        "SLURM time limit in no SLURM format",
        experiment().slurm(timeLimit="2 hours").obj(),
        "spec.placement.slurm.timeLimit",
        "HH:MM:SS",
    ),
    (
        "requeues without a time limit",
        experiment().slurm(maxRequeues=3).obj(),
        "spec.placement.slurm.timeLimit",
        "required when maxRequeues",
    ),
    (
        "unknown container runtime",
        experiment().slurm(containerRuntime="docker").obj(),
        "spec.placement.slurm.containerRuntime",
        "apptainer",
    ),
    (
        "unknown field",
        experiment().set("spec.stopp", {"iterations": 1}).obj(),
        "spec.stopp",
        "unknown field",
    ),
    (
        "Kueue queue name Kubernetes would reject",
        experiment().kubernetes(queue="Team Queue").obj(),
        "spec.placement.kubernetes.queue",
        "LocalQueue",
    ),
    ("wrong kind", {**experiment().obj(), "kind": "Experiment"}, "kind", "RLExperiment, Sweep"),
    (
        "sweep parameter on an unknown keyword",
        sweep().param("config.training.lrr", "grid", values=[1, 2]).obj(),
        "spec.parameters.config.training.lrr",
        "did you mean lr",
    ),
    (
        "sweep list index out of range",
        sweep()
        .template("config.rl_module", {"model_config": {"fcnet_hiddens": [64]}})
        .param("config.rl_module.model_config.fcnet_hiddens.3", "grid", values=[8])
        .obj(),
        "spec.parameters.config.rl_module.model_config.fcnet_hiddens.3",
        "out of range",
    ),
    (
        "loguniform with a non-positive bound",
        sweep()
        .set("spec.algorithm", "random")
        .set("spec.maxTrials", 4)
        .param("config.training.lr", "loguniform", low=0, high=0.1)
        .obj(),
        "spec.parameters.config.training.lr.low",
        "low > 0",
    ),
    (
        "random search without maxTrials",
        sweep().set("spec.algorithm", "random").param("seed", "int", low=0, high=9).obj(),
        "spec.maxTrials",
        "required",
    ),
    (
        "grid over a continuous distribution",
        sweep().param("config.training.lr", "uniform", low=0.1, high=0.2).obj(),
        "spec.parameters.config.training.lr",
        "cannot be enumerated",
    ),
    (
        "paired keys of different lengths",
        sweep()
        .param("config.training.lr", "grid", values=[0.1, 0.2])
        .param("config.training.gamma", "grid", values=[0.9])
        .set("spec.paired", [["config.training.lr", "config.training.gamma"]])
        .obj(),
        "spec.paired.0",
        "as many values",
    ),
    (
        "goal above the template's stop return",
        sweep()
        .template("stop", {"episodeReturnMean": 100})
        .set("spec.objective", {"goal": 150})
        .obj(),
        "spec.objective.goal",
        "contradictory",
    ),
    (
        "burst without maxParallel",
        sweep().set("spec.placement", {"backend": "burst", "slurm": {"cluster": "hpc"}}).obj(),
        "spec.placement.kubernetes.maxParallel",
        "required for burst",
    ),
    ("zero parallelism", sweep().set("spec.parallelism", 0).obj(), "spec.parallelism", ">= 1"),
    ("sweep name too long for trial names", sweep("s" * 40).obj(), "metadata.name", "at most 36"),
]


@pytest.mark.parametrize(("case", "manifest", "path", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_manifest_is_reported_with_path_and_allowed_values(
    case: str, manifest: dict[str, Any], path: str, fragment: str
) -> None:
    errors = validate_manifest(manifest)
    matching = [e for e in errors if e.path == path]
    assert matching, f"{case}: no error at {path}; got {[str(e) for e in errors]}"
    assert any(fragment in e.message for e in matching), [str(e) for e in matching]


def test_all_errors_are_reported_at_once() -> None:
    manifest = (
        experiment("Bad_Name")
        .algorithm("PPO")
        .config("training", lrr=1)
        .set("spec.resources.nodes", 0)
        .set("spec.typo", True)
        .stop()
        .obj()
    )
    paths = {e.path for e in validate_manifest(manifest)}
    assert {
        "metadata.name",
        "spec.config.training.lrr",
        "spec.resources.nodes",
        "spec.typo",
        "spec.stop",
    } <= paths


def test_examples_are_valid() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion") == "rlops.dev/v1alpha1":
                assert validate_manifest(doc) == [], path


def test_valid_builders_are_valid() -> None:
    assert validate_manifest(experiment().obj()) == []
    assert validate_manifest(sweep().param("config.training.lr", "grid", values=[0.1]).obj()) == []


@pytest.mark.parametrize(
    ("limit", "seconds"),
    [("30", 1800), ("1:30", 90), ("01:00:00", 3600), ("2-0", 172800), ("1-02:03:04", 93784)],
)
def test_slurm_time_limits(limit: str, seconds: int) -> None:
    assert slurm_seconds(limit) == seconds


def test_validate_command_prints_errors_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(experiment().algorithm("PPOO").obj()))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(experiment().obj()))
    cmd = [sys.executable, "-m", "rlops", "validate"]
    failed = subprocess.run([*cmd, str(good), str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert "spec.algorithm" in failed.stderr and "valid: APPO" in failed.stderr
    passed = subprocess.run([*cmd, str(good)], capture_output=True, text=True)
    assert passed.returncode == 0, passed.stderr
