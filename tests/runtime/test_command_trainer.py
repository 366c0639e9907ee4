"""Command trainers: a program of the user's own trains under the runtime's books.

The manifest's rules (exactly one of algorithm and command, placeholders, a free-form
config), the argv template (`{overrides}` in Hydra's grammar, `python` as this
interpreter, a script found on the import paths), and the runtime as a process running
examples/tabular_q/train.py (standard library only): learning to a real return threshold,
checkpoints adopted and kept N best, SIGTERM forwarded and answered with a checkpoint and
exit 75, the next attempt resuming with continued counters, the pause point, a program
that ignores SIGTERM killed after the grace period, a crashing program failing, and
`rlops.report` handing over checkpoints without importing Ray.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from rlops.api.command import expand, hydra_value
from rlops.api.experiment import RLExperiment
from rlops.api.runinfo import ExitCode, read_progress, read_result
from rlops.api.validation import validate_manifest
from rlops.runtime.command import program_argv
from tests.builders import TABULAR_Q, experiment, tabular_q
from tests.conftest import ROOT
from tests.runtime.conftest import finish, runtime_env, start_runtime
from tests.waiting import wait_until


def errors_of(manifest: dict[str, object]) -> dict[str, str]:
    return {e.path: e.message for e in validate_manifest(manifest)}


# --- the manifest -----------------------------------------------------------------------


def test_a_command_trainer_is_valid_with_a_free_form_config_and_no_stop() -> None:
    manifest = tabular_q(alpha=0.5, schedule={"kind": "linear", "steps": [1, 2]}).obj()
    manifest["spec"]["stop"] = {}
    assert errors_of(manifest) == {}


def test_exactly_one_of_algorithm_and_command() -> None:
    both = tabular_q().set("spec.algorithm", "PPO").obj()
    neither = experiment().drop("spec.algorithm").obj()
    for manifest in (both, neither):
        assert "exactly one of `algorithm`" in errors_of(manifest)["spec.algorithm"]


def test_rllib_runs_still_need_an_environment_stop_criteria_and_config_groups() -> None:
    manifest = experiment().drop("spec.environment").set("spec.stop", {}).obj()
    manifest["spec"]["config"]["lr"] = 0.1
    errors = errors_of(manifest)
    assert "required for an RLlib algorithm" in errors["spec.environment"]
    assert "at least one criterion" in errors["spec.stop"]
    assert "a config group is a mapping" in errors["spec.config.lr"]


def test_placeholders_and_arguments_are_checked_with_their_position() -> None:
    manifest = tabular_q(alpha=0.5).obj()
    manifest["spec"]["command"] = ["python", "t.py", "--a={config.alpha}", "--b={config.beta}",
                                   "x{overrides}", "{sede}", "bad\narg"]  # fmt: skip
    manifest["spec"]["environment"] = {"id": "CartPole-v1"}
    errors = errors_of(manifest)
    assert "spec.command[2]" not in errors
    assert "spec.config has no config.beta" in errors["spec.command[3]"]
    assert "must be an argument on its own" in errors["spec.command[4]"]
    assert "unknown placeholder {sede}" in errors["spec.command[5]"]
    assert "control characters" in errors["spec.command[6]"]
    assert "a command trainer has its own" in errors["spec.environment"]


def test_the_argv_template_fills_config_values_and_hydra_overrides() -> None:
    config = {"a": 1, "model": {"lr": 0.001, "layers": [64, 64], "name": "big net"}, "x": None}
    template = ["python", "train.py", "{overrides}", "seed={seed}", "--lr={config.model.lr}",
                "--dir={runDir}", "--layers={config.model.layers}"]  # fmt: skip
    argv = expand(template, config, 7, "/r")
    assert argv == [
        "python", "train.py", "a=1", "model.lr=0.001", "model.layers=[64,64]",
        "model.name='big net'", "x=null", "seed=7", "--lr=0.001", "--dir=/r", "--layers=[64,64]",
    ]  # fmt: skip
    assert hydra_value(True) == "true" and hydra_value("true") == "'true'"


def test_python_is_this_interpreter_and_a_relative_script_is_found_on_the_import_paths(
    tmp_path: Path,
) -> None:
    spec = RLExperiment.model_validate(tabular_q().obj()).spec
    argv = program_argv(spec, tmp_path, [str(tmp_path), str(ROOT)])
    assert argv[:2] == [sys.executable, str(ROOT / TABULAR_Q)]


# --- the runtime running the program -------------------------------------------------


def run_tabular_q(tmp_path: Path, manifest: dict[str, object], **env: str) -> tuple[int, str]:
    return finish(start_runtime(manifest, tmp_path / "run", env=runtime_env(**env), cwd=ROOT))


def test_the_example_learns_to_the_goal_and_keeps_the_best_checkpoints(tmp_path: Path) -> None:
    manifest = (
        tabular_q(alpha=0.5)
        .stop(episodeReturnMean=0.6, iterations=500)
        .set("spec.checkpoint", {"frequency": 5, "keep": 2, "scoreAttribute": "success_rate"})
        .obj()
    )
    code, output = run_tabular_q(tmp_path, manifest)
    assert code == ExitCode.SUCCEEDED, output
    run_dir = tmp_path / "run"
    result = read_result(run_dir)
    assert result is not None and result.stop_reason == "episode_return_mean"
    progress = read_progress(run_dir)
    first_goal = next(p.iteration for p in progress if (p.episode_return_mean or 0) >= 0.6)
    assert progress[0].episode_return_mean is not None and progress[0].episode_return_mean < 0.6
    assert result.iteration >= first_goal and result.iteration < 500
    assert [p.iteration for p in progress] == list(range(1, result.iteration + 1))
    assert all("success_rate" in p.metrics for p in progress)
    # Adopted at the iteration each line named; the 2 best by success rate plus the latest.
    kept = sorted((run_dir / "checkpoints").glob("checkpoint_*"))
    assert 1 <= len(kept) <= 3
    for path in kept:
        meta = json.loads((path / "rlops_checkpoint.json").read_text())
        (own,) = [p for p in path.iterdir() if p.name != "rlops_checkpoint.json"]
        assert json.loads(own.read_text())["iteration"] == meta["iteration"]
    assert result.runtime is not None and result.runtime.ray_nodes is None
    assert json.loads((run_dir / "config.json").read_text())["alpha"] == 0.5


def test_sigterm_checkpoints_exit_75_and_the_next_attempt_resumes(tmp_path: Path) -> None:
    manifest = tabular_q(alpha=0.02, episodes_per_iteration=100).stop(iterations=100_000).obj()
    run_dir = tmp_path / "run"
    process = start_runtime(manifest, run_dir, env=runtime_env(), cwd=ROOT)
    wait_until(lambda: len(read_progress(run_dir)) >= 5, 60, "five iterations")
    process.send_signal(signal.SIGTERM)
    code, output = finish(process)
    assert code == ExitCode.REQUEUE, output
    first = read_result(run_dir)
    assert first is not None and "SIGTERM received; the program checkpointed" in first.message
    assert first.last_checkpoint is not None

    manifest["spec"]["stop"] = {"iterations": first.iteration + 3}
    code, output = run_tabular_q(tmp_path, manifest)
    assert code == ExitCode.SUCCEEDED, output
    assert f"resumed from {run_dir / first.last_checkpoint}" in output
    second = read_result(run_dir)
    assert second is not None and second.attempt == 2
    assert second.iteration >= first.iteration + 3 and second.timesteps > first.timesteps
    resumed = [p for p in read_progress(run_dir) if p.attempt == 2]
    assert resumed[0].iteration == first.iteration + 1  # counters go on from the checkpoint
    assert resumed[0].timesteps > first.timesteps


def test_the_pause_point_ends_the_program_as_paused(tmp_path: Path) -> None:
    manifest = tabular_q(alpha=0.02).stop(iterations=100_000).obj()
    code, output = run_tabular_q(tmp_path, manifest, RLOPS_PAUSE_AT_ITERATION="4")
    assert code == ExitCode.REQUEUE, output
    result = read_result(tmp_path / "run")
    assert result is not None and result.stop_reason == "paused" and result.iteration >= 4


def write_program(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    program = write_program(
        tmp_path,
        """
        import json, os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open(os.environ["RLOPS_PROGRESS"], "a") as f:
            for i in range(1, 10_000):
                f.write(json.dumps({"iteration": i, "timesteps": 10 * i}) + "\\n")
                f.flush()
                time.sleep(0.05)
        """,
    )
    manifest = experiment().command("python", str(program)).stop(iterations=3).obj()
    code, output = run_tabular_q(tmp_path, manifest, RLOPS_COMMAND_GRACE_SECONDS="1")
    assert code == ExitCode.SUCCEEDED, output  # the criterion was met: it ends as asked
    result = read_result(tmp_path / "run")
    assert result is not None and "did not end 1s after SIGTERM; killed" in result.message


def test_a_crashing_program_fails_the_attempt_with_its_exit_code(tmp_path: Path) -> None:
    program = write_program(tmp_path, "import sys\nsys.exit(3)\n")
    manifest = experiment().command("python", str(program)).obj()
    code, output = run_tabular_q(tmp_path, manifest)
    assert code == ExitCode.FAILED, output
    result = read_result(tmp_path / "run")
    assert result is not None and result.message == "the program exited 3"


def test_report_hands_over_checkpoints_and_never_imports_ray(tmp_path: Path) -> None:
    program = write_program(
        tmp_path,
        """
        import os, pathlib, sys
        import rlops
        assert "ray" not in sys.modules and "torch" not in sys.modules
        assert rlops.resume_checkpoint() is None
        for i in range(1, 4):
            saved = pathlib.Path(os.environ["RLOPS_RUN_DIR"]) / f"weights-{i}"
            saved.write_text(str(i))
            rlops.report({"iteration": i, "timesteps": 5 * i, "episode_return_mean": float(i)},
                         checkpoint=saved)
        """,
    )
    manifest = experiment().command("python", str(program)).obj()
    manifest["spec"]["checkpoint"] = {"keep": 1}
    code, output = run_tabular_q(tmp_path, manifest)
    assert code == ExitCode.SUCCEEDED, output
    run_dir = tmp_path / "run"
    result = read_result(run_dir)
    assert result is not None and result.message == "the program exited 0"
    assert result.best_checkpoint == "checkpoints/checkpoint_000003"
    assert (run_dir / "checkpoints" / "checkpoint_000003" / "weights-3").read_text() == "3"
    assert [p.episode_return_mean for p in read_progress(run_dir)] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_report_refuses_non_finite_values(value: float) -> None:
    import rlops

    with pytest.raises(ValueError, match="non-finite values for loss"):
        rlops.report({"iteration": 1, "loss": value})


def test_a_record_posts_at_most_the_endpoints_metrics_and_keeps_all_in_the_log(
    tmp_path: Path,
) -> None:
    from rlops.api.runinfo import MAX_REPORTED_METRICS, ProgressRecord
    from rlops.runtime.loop import publish
    from rlops.runtime.progress import ProgressLog

    posted: list[dict[str, object]] = []

    class Reporter:
        def report(self, record: dict[str, object]) -> None:
            posted.append(record)

    metrics = {f"m{i:03d}": float(i) for i in range(100)}
    record = ProgressRecord(iteration=1, timesteps=1, time_seconds=0.0, timestamp=0.0,
                            metrics=metrics)  # fmt: skip
    log = ProgressLog(tmp_path)
    publish(record, metrics, log, Reporter(), None)  # type: ignore[arg-type]
    log.close()
    assert list(posted[0]["metrics"]) == list(metrics)[:MAX_REPORTED_METRICS]  # type: ignore[call-overload]
    assert read_progress(tmp_path)[0].metrics == metrics
