"""`rlops.run()`: a Sweep and an RLExperiment given as a path, a dict or a model, run by the
command line's own code path (runner, packing, run directory) with the fake trainer of the
runner tests (tests/runner/fake_trainer.py, set through RLOPS_TRIAL_COMMAND as `rlops run`
reads it); the result's phase, best trial and trials agree with the run directory, a second
call resumes, overrides apply, and invalid manifests raise ValueError naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import rlops
from rlops.api import RLExperiment
from rlops.api.runinfo import read_progress
from tests.builders import experiment, sweep
from tests.runner.helpers import FAKE_COMMAND


@pytest.fixture(autouse=True)
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLOPS_TRIAL_COMMAND", FAKE_COMMAND)
    monkeypatch.setenv("RLOPS_POLL_SECONDS", "0.05")


def lr_sweep() -> dict[str, object]:
    return (
        sweep("lr")
        .param("config.training.lr", "grid", values=[0.001, 0.01, 0.1])
        .template("stop", {"iterations": 3})
        .set("spec.parallelism", 3)
        .obj()
    )


def test_a_sweep_from_a_dict(tmp_path: Path) -> None:
    result = rlops.run(lr_sweep(), cpus=3, run_dir=tmp_path, report=False)
    assert (result.kind, result.phase, result.exit_code) == ("Sweep", "Succeeded", 0)
    assert result.run_dir == tmp_path / "lr"
    assert sorted(t.name for t in result.trials) == ["lr-0", "lr-1", "lr-2"]
    for t in result.trials:
        assert t.phase == "Succeeded" and t.run_dir == tmp_path / "lr" / "trials" / t.name
        assert (t.run_dir / "result.json").is_file()
    by_lr = {t.parameters["config.training.lr"]: t for t in result.trials}
    assert set(by_lr) == {0.001, 0.01, 0.1}
    # The fake trainer's return grows with the learning rate: the best is the largest.
    assert result.best is not None and result.best is by_lr[0.1]
    assert result.best.objective == max(t.objective or 0 for t in result.trials)


def test_a_second_call_resumes_and_overrides_apply(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(lr_sweep()))
    first = rlops.run(path, cpus=3, run_dir=tmp_path / "runs", report=False)
    again = rlops.run(path, cpus=3, run_dir=tmp_path / "runs", report=False)
    assert again.phase == "Succeeded" and [t.attempts for t in again.trials] == [
        t.attempts for t in first.trials
    ]  # Nothing re-ran: every trial had finished.
    shorter = rlops.run(
        path, cpus=3, run_dir=tmp_path / "other", report=False,
        overrides=["template.stop.iterations=2"],
    )  # fmt: skip
    for t in shorter.trials:
        assert t.run_dir is not None and read_progress(t.run_dir)[-1].iteration == 2


def test_an_experiment_model(tmp_path: Path) -> None:
    model = RLExperiment.model_validate(experiment("solo").stop(iterations=2).obj())
    result = rlops.run(model, cpus=1, run_dir=tmp_path, report=False)
    assert (result.kind, result.phase) == ("RLExperiment", "Succeeded")
    [trial] = result.trials
    assert trial.name == "solo" and trial.run_dir == tmp_path / "solo"
    assert result.best is trial and trial.objective is not None


def test_invalid_manifests_raise_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"spec.parallelism: 0 is not allowed"):
        rlops.run(lr_sweep(), run_dir=tmp_path, overrides=["parallelism=0"])
    with pytest.raises(ValueError, match="not a dotted path"):
        rlops.run(lr_sweep(), run_dir=tmp_path, overrides=["a..b=1"])
