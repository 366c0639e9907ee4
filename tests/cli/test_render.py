"""`rlops render FILE`: an RLExperiment on Kubernetes prints its RayJob (valid for KubeRay's
CRD, the progress token not revealed), one on SLURM its batch script, a Sweep the trials of
its first plan; invalid manifests print their errors and exit non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlops.cli import main
from tests.backends.kuberay_fixtures import crd_violations
from tests.builders import experiment
from tests.conftest import EXAMPLES


def render(tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, object]) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["render", str(path), "-n", "team"]) == 0
    return capsys.readouterr().out


def test_kubernetes_experiment_renders_its_rayjob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(tmp_path, capsys, experiment("cp").kubernetes(queue="q").obj())
    secret, rayjob = yaml.safe_load_all(out)
    assert rayjob["kind"] == "RayJob" and rayjob["metadata"]["namespace"] == "team"
    assert rayjob["spec"]["suspend"] is True
    assert crd_violations(rayjob) == []
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "cp-progress"
    assert secret["stringData"]["token"].startswith("<")


def test_slurm_experiment_renders_its_batch_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(tmp_path, capsys, experiment("cp").slurm(partition="gpu").obj())
    assert out.startswith("#!") and "#SBATCH" in out and "gpu" in out


def test_sweep_renders_the_trials_of_its_first_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = yaml.safe_load((EXAMPLES / "sweep.yaml").read_text())
    out = render(tmp_path, capsys, sweep)
    trials = [d for d in yaml.safe_load_all(out) if d]
    assert [t["metadata"]["name"] for t in trials] == ["cartpole-grid-0-s0", "cartpole-grid-0-s1"]
    assert all(t["kind"] == "RLExperiment" for t in trials)
    assert {t["spec"]["seed"] for t in trials} == {0, 1}


def test_invalid_manifest_fails_with_its_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(experiment("cp").drop("spec.stop").obj()))
    assert main(["render", str(path)]) == 1
    assert "spec.stop" in capsys.readouterr().err
