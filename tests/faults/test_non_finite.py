"""Non-finite numbers (NaN, Infinity) are rejected with a field path: in specs (typed fields
and free-form `config` or sweep values), in progress records and in run results, and the
readers of progress.jsonl and result.json skip them instead of passing them on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from rlops.api import validate_manifest
from rlops.api.runinfo import (
    PROGRESS_FILE,
    RESULT_FILE,
    ProgressRecord,
    RunResult,
    read_progress,
    read_result,
)
from tests.builders import experiment, sweep

NON_FINITE = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bad", NON_FINITE)
def test_a_spec_number_must_be_finite(bad: float) -> None:
    body = experiment("nan").stop(episodeReturnMean=bad, iterations=3).obj()
    assert "spec.stop.episodeReturnMean" in [e.path for e in validate_manifest(body)]


@pytest.mark.parametrize("bad", NON_FINITE)
def test_a_config_value_must_be_finite(bad: float) -> None:
    body = experiment("nan").config("training", lr=bad).obj()
    errors = [e for e in validate_manifest(body) if e.path == "spec.config"]
    assert errors and "training.lr" in errors[0].message


def test_sweep_values_must_be_finite() -> None:
    body = sweep("nan").param("config.training.lr", "choice", values=[0.1, float("nan")]).obj()
    errors = validate_manifest(body)
    assert any("values" in e.path and "1" in e.message for e in errors), errors


RECORD = {"iteration": 1, "timesteps": 10, "time_seconds": 1.0, "timestamp": 1.0}


@pytest.mark.parametrize(
    ("patch", "loc"),
    [({"time_seconds": "NaN"}, "time_seconds"), ({"episode_return_mean": "Infinity"},
     "episode_return_mean"), ({"metrics": {"loss": "-Infinity"}}, "metrics.loss")],
)  # fmt: skip
def test_a_progress_record_must_be_finite(patch: dict[str, object], loc: str) -> None:
    text = json.dumps(RECORD | patch).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    text = text.replace('"-Infinity"', "-Infinity")
    with pytest.raises(ValidationError) as info:
        ProgressRecord.model_validate(json.loads(text))
    assert loc in str(info.value)


def test_a_run_result_must_be_finite() -> None:
    with pytest.raises(ValidationError, match="best_episode_return_mean"):
        RunResult.model_validate_json(
            '{"status":"succeeded","exit_code":0,"best_episode_return_mean":NaN}'
        )


def test_readers_skip_non_finite_lines_and_results(tmp_path: Path) -> None:
    good = json.dumps(RECORD)
    (tmp_path / PROGRESS_FILE).write_text(
        good + "\n" + json.dumps(RECORD | {"iteration": 2}).replace("1.0,", "NaN,", 1) + "\n"
    )
    assert [r.iteration for r in read_progress(tmp_path)] == [1]
    (tmp_path / RESULT_FILE).write_text('{"status":"failed","exit_code":1,"time_seconds":NaN}')
    assert read_result(tmp_path) is None
