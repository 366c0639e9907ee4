"""The runtime's pure parts: config building from spec groups, stop criteria, checkpoint
ranking, result flattening, import paths, progress URLs, attempt numbering."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest

from rlops.api.experiment import ResourcesSpec, RLExperiment, StopSpec
from rlops.api.runinfo import ProgressRecord, RunResult, progress_line
from rlops.runtime.algo_config import build_config, load_entry_point, local_cpus
from rlops.runtime.checkpoints import CheckpointInfo, best_of, score_of, to_keep
from rlops.runtime.main import next_attempt, write_result
from rlops.runtime.options import build_parser
from rlops.runtime.progress import flatten, progress_metrics
from rlops.runtime.pythonpath import JOB_CONFIG_VAR, import_paths, job_pythonpath, runtime_env
from rlops.runtime.reporter import with_query
from rlops.runtime.signals import REQUEUE_SIGNALS, SignalWatch
from rlops.runtime.stopping import Totals, stop_reason
from tests.builders import experiment


def test_config_groups_are_applied_as_algorithm_config_methods() -> None:
    manifest = (
        experiment()
        .config("training", lr=0.005, gamma=0.9, num_epochs=3)
        .config("rl_module", model_config={"fcnet_hiddens": [32, 16]})
        .config("evaluation", evaluation_interval=4)
        .set("spec.environment.config", {"max_episode_steps": 50})
        .set("spec.resources", {"envRunners": 2, "envsPerRunner": 3, "cpusPerRunner": 0.5})
        .set("spec.seed", 7)
        .obj()
    )
    config = build_config(RLExperiment.model_validate(manifest).spec, "CartPole-v1")

    assert (config.lr, config.gamma, config.num_epochs) == (0.005, 0.9, 3)
    assert config.model_config["fcnet_hiddens"] == [32, 16]
    assert config.evaluation_interval == 4
    assert config.env == "CartPole-v1" and config.env_config == {"max_episode_steps": 50}
    assert (config.num_env_runners, config.num_envs_per_env_runner) == (2, 3)
    assert config.num_cpus_per_env_runner == 0.5
    assert config.seed == 7
    assert type(config).__name__ == "PPOConfig"


def test_local_ray_is_sized_from_resources() -> None:
    assert local_cpus(ResourcesSpec()) == 1
    assert local_cpus(ResourcesSpec(env_runners=3, cpus_per_runner=0.5, driver_cpus=1)) == 3
    assert local_cpus(ResourcesSpec(learners=2)) == 3
    assert local_cpus(ResourcesSpec(learners=2, gpus_per_learner=1)) == 1


def test_entry_points_resolve_dotted_attributes() -> None:
    assert load_entry_point("os.path:join") is __import__("os").path.join
    with pytest.raises(TypeError, match="entryPoint"):
        load_entry_point("os:sep")


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        (Totals(), None),
        (Totals(timesteps=1000), "timesteps"),
        (Totals(iteration=3), "iterations"),
        (Totals(time_seconds=60.0), "wall_time_seconds"),
        (Totals(episode_return_mean=200.0), "episode_return_mean"),
        (Totals(episode_return_mean=199.0, iteration=2), None),
        # Several met by one iteration: reaching the goal wins.
        (Totals(episode_return_mean=250.0, timesteps=5000, iteration=9), "episode_return_mean"),
    ],
)
def test_stop_reason_names_the_first_criterion_met(totals: Totals, expected: str | None) -> None:
    stop = StopSpec(timesteps=1000, episode_return_mean=200, iterations=3, wall_time_seconds=60)
    assert stop_reason(stop, totals) == expected


def _checkpoint(iteration: int, score: float | None) -> CheckpointInfo:
    return CheckpointInfo(Path(f"c{iteration}"), iteration, 0, 0.0, 1, score, None, None)


def test_keep_n_best_by_score_plus_the_latest() -> None:
    checkpoints = [_checkpoint(1, None), _checkpoint(2, 50.0), _checkpoint(3, 80.0),
                   _checkpoint(4, 20.0), _checkpoint(5, 60.0), _checkpoint(6, 10.0)]  # fmt: skip
    kept = lambda keep, order: [c.iteration for c in to_keep(checkpoints, keep, order)]  # noqa: E731
    assert kept(2, "max") == [3, 5, 6]
    assert kept(2, "min") == [4, 6]  # the latest is also among the two lowest
    assert kept(1, "min") == [6]
    assert kept(None, "max") == [1, 2, 3, 4, 5, 6]
    assert kept(10, "max") == [1, 2, 3, 4, 5, 6]
    best = best_of(checkpoints, "max")
    assert best is not None and best.iteration == 3
    assert best_of([_checkpoint(1, None), _checkpoint(2, None)], "max").iteration == 2  # type: ignore[union-attr]


def test_scores_and_flattened_results() -> None:
    result = {
        "env_runners": {"episode_return_mean": 42.5, "episode_len_mean": float("nan")},
        "learners": {"default_policy": {"total_loss": 1.5, "entropy": 0.6, "curr_lr": 1e-3},
                     "__all_modules__": {"num_env_steps_trained": 100}},
        "config": {"lr": 0.1},
        "done": False,
        "hostname": "node",
        "time_this_iter_s": 2.0,
    }  # fmt: skip
    assert score_of(result, "env_runners/episode_return_mean") == 42.5
    assert score_of(result, "env_runners/episode_len_mean") is None  # NaN is no score
    assert score_of(result, "env_runners/missing") is None
    flat = flatten(result)
    assert flat == {
        "env_runners/episode_return_mean": 42.5,
        "learners/default_policy/total_loss": 1.5,
        "learners/default_policy/entropy": 0.6,
        "learners/default_policy/curr_lr": 1e-3,
        "learners/__all_modules__/num_env_steps_trained": 100.0,
        "time_this_iter_s": 2.0,
    }
    assert progress_metrics(flat, "env_runners/episode_return_mean") == {
        "env_runners/episode_return_mean": 42.5,
        "learners/default_policy/total_loss": 1.5,
        "learners/default_policy/entropy": 0.6,
        "time_this_iter_s": 2.0,
    }
    assert all(math.isfinite(v) for v in flat.values())


def test_import_paths_and_worker_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = import_paths(os.pathsep.join(["lib", "/opt/envs"]), tmp_path / "manifests", tmp_path)
    assert paths == [str(tmp_path / "lib"), "/opt/envs", str(tmp_path / "manifests"), str(tmp_path)]
    assert import_paths("", None, tmp_path) == [str(tmp_path)]
    monkeypatch.setenv("PYTHONPATH", "/site/extra")
    joined = os.pathsep.join(["/a", "/b", "/site/extra"])
    assert runtime_env(["/a", "/b"]) == {"env_vars": {"PYTHONPATH": joined}}
    # The driver of a submitted job whose runtime_env sets PYTHONPATH keeps its entries.
    job = {"runtime_env": {"env_vars": {"PYTHONPATH": "/job/code"}, "working_dir": "x"}}
    environ = {JOB_CONFIG_VAR: json.dumps(job)}
    assert job_pythonpath(environ) == ["/job/code"]
    assert job_pythonpath({JOB_CONFIG_VAR: json.dumps({"runtime_env": {}})}) is None
    assert job_pythonpath({}) is None
    joined = os.pathsep.join(["/a", "/job/code"])
    assert runtime_env(["/a"], environ) == {"env_vars": {"PYTHONPATH": joined}}


def test_final_result_url_keeps_the_query() -> None:
    assert with_query("http://op:8081/progress/ns/x", final="1") == (
        "http://op:8081/progress/ns/x?final=1"
    )
    assert with_query("http://op/p?token=a", final="1") == "http://op/p?token=a&final=1"


def test_attempts_are_numbered_from_the_run_directory(tmp_path: Path) -> None:
    assert next_attempt(tmp_path) == 1
    record = ProgressRecord(iteration=1, timesteps=10, time_seconds=1, timestamp=0, attempt=2)
    (tmp_path / "progress.jsonl").write_text(progress_line(record))
    assert next_attempt(tmp_path) == 3
    write_result(tmp_path, RunResult(status="requeue", exit_code=75, attempt=4))
    assert next_attempt(tmp_path) == 5


def test_the_command_line_contract() -> None:
    parser = build_parser()
    args = parser.parse_args(["--spec", "x.yaml", "--run-dir", "r", "--ray-address", "h:6379",
                              "--attempt", "3"])  # fmt: skip
    assert (args.spec, args.run_dir, args.ray_address, args.attempt) == (
        Path("x.yaml"), "r", "h:6379", 3,
    )  # fmt: skip
    assert parser.parse_args(["--spec-b64", "eA=="]).spec_b64 == "eA=="
    with pytest.raises(SystemExit):
        parser.parse_args(["--spec", "a", "--spec-b64", "b"])


def test_a_torn_progress_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    from rlops.api.runinfo import read_progress
    from rlops.runtime.progress import ProgressLog

    (tmp_path / "progress.jsonl").write_text('{"iteration": 1, "timest')  # killed mid-write
    log = ProgressLog(tmp_path)
    record = ProgressRecord(iteration=1, timesteps=500, time_seconds=1.0, timestamp=0.0)
    log.write(record, {"a/b": 1.0})
    log.close()
    assert read_progress(tmp_path) == [record]


def test_after_the_attempt_late_signals_are_ignored_and_a_plain_watch_restores() -> None:
    """The runtime's watch lingers: once the attempt is over (checkpointed), a stop or
    pause that crosses its end cannot kill it before result.json is written."""
    before = {sig: signal.getsignal(sig) for sig in REQUEUE_SIGNALS}
    try:
        with SignalWatch():
            assert signal.getsignal(signal.SIGTERM) not in (before[signal.SIGTERM], None)
        assert {sig: signal.getsignal(sig) for sig in REQUEUE_SIGNALS} == before
        with SignalWatch(linger=True) as watch:
            pass
        assert watch.received is None
        assert all(signal.getsignal(sig) == signal.SIG_IGN for sig in REQUEUE_SIGNALS)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
