"""Class-valued RLlib settings written as `package.module:Name` strings: where they are
found (callbacks, callback functions, RLModule specs), their form checked by the validator,
their import checked by `rlops validate` with a message naming the module or the class, their
resolution into classes and an RLModuleSpec, and real training with a custom callback
(examples/rlops_examples/callbacks.py) whose custom metric reaches progress.jsonl and serves
a local sweep as its objective.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.classrefs import class_refs, ref_errors
from rlops.api.runinfo import ExitCode, read_progress
from rlops.api.validation import validate_manifest
from rlops.runner.layout import SweepLayout
from tests.builders import experiment, sweep
from tests.conftest import ROOT
from tests.runtime.conftest import finish, runtime_env, start_runtime

RLOPS = str(Path(sys.executable).with_name("rlops"))
CALLBACK = "rlops_examples.callbacks:LongEpisodes"
METRIC = "env_runners/long_episode_rate"


def test_class_settings_are_found_where_rllib_takes_classes() -> None:
    config: dict[str, Any] = {
        "callbacks": {"callbacks_class": [CALLBACK, "a.b:C"], "on_episode_end": "m:f"},
        "rl_module": {"rl_module_spec": {"module_class": "m:Module", "model_config": {}}},
        "training": {"lr": 0.1},
    }
    assert list(class_refs(config)) == [
        ("callbacks.callbacks_class[0]", CALLBACK),
        ("callbacks.callbacks_class[1]", "a.b:C"),
        ("callbacks.on_episode_end", "m:f"),
        ("rl_module.rl_module_spec.module_class", "m:Module"),
    ]
    assert ref_errors(config) == []


def test_the_validator_names_a_setting_that_is_no_import_string() -> None:
    manifest = experiment().config("callbacks", callbacks_class="LongEpisodes").obj()
    errors = {e.path: e.message for e in validate_manifest(manifest)}
    assert "is not `package.module:Name`" in errors["spec.config.callbacks.callbacks_class"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (CALLBACK, None),
        ("rlops_examples.callbacks:LongEpisode", "module 'rlops_examples.callbacks' has no "
                                                 "'LongEpisode'"),
        ("rlops_exampls.callbacks:LongEpisodes", "module 'rlops_exampls' is not on the import"),
    ],
)  # fmt: skip
def test_rlops_validate_imports_them_and_names_what_it_cannot_find(
    tmp_path: Path, ref: str, message: str | None
) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text(yaml.safe_dump(experiment().config("callbacks", callbacks_class=ref).obj()))
    done = subprocess.run(
        [RLOPS, "validate", str(file)], capture_output=True, text=True, cwd=ROOT,
        env=runtime_env(RLOPS_PYTHONPATH="examples"), check=False,
    )  # fmt: skip
    if message is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 1
        assert "spec.config.callbacks.callbacks_class" in done.stderr and message in done.stderr


def test_strings_become_classes_and_an_rlmodule_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from rlops.runtime.algo_config import resolve_classes

    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from rlops_examples.callbacks import LongEpisodes  # type: ignore[import-not-found]

    config = {
        "callbacks": {"callbacks_class": CALLBACK, "on_episode_end": [CALLBACK]},
        "rl_module": {"rl_module_spec": {"module_class": "ray.rllib.core.rl_module:RLModule"}},
    }
    resolved = resolve_classes(config)
    assert resolved["callbacks"] == {
        "callbacks_class": LongEpisodes,
        "on_episode_end": [LongEpisodes],
    }
    spec = resolved["rl_module"]["rl_module_spec"]
    assert isinstance(spec, RLModuleSpec) and spec.module_class.__name__ == "RLModule"
    assert config["callbacks"]["callbacks_class"] == CALLBACK  # the spec itself is untouched


@pytest.mark.training
def test_a_custom_callback_metric_is_recorded_and_is_a_sweeps_objective(tmp_path: Path) -> None:
    manifest = (
        experiment("long")
        .config("training", train_batch_size_per_learner=500, minibatch_size=128, num_epochs=2)
        .config("callbacks", callbacks_class=CALLBACK)
        .stop(iterations=2)
        .set("spec.seed", 1)
        .obj()
    )
    env = runtime_env(RLOPS_PYTHONPATH=str(ROOT / "examples"))
    code, output = finish(start_runtime(manifest, tmp_path / "run", env=env))
    assert code == ExitCode.SUCCEEDED, output
    records = read_progress(tmp_path / "run")
    assert len(records) == 2 and all(0.0 <= r.metrics[METRIC] <= 1.0 for r in records)

    swept = (
        sweep("long")
        .set("spec.template", manifest["spec"])
        .param("config.training.lr", "grid", values=[0.001, 0.0003])
        .set("spec.objective", {"metric": METRIC, "mode": "max"})
        .set("spec.parallelism", 2)
        .obj()
    )
    file = tmp_path / "long.yaml"
    file.write_text(yaml.safe_dump(swept))
    done = subprocess.run(
        [RLOPS, "run", str(file), "--root", str(tmp_path / "runs"), "--cpus", "2", "-q"],
        capture_output=True, text=True, timeout=400, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / "long")
    results = json.loads(layout.results.read_text())
    for row in results["leaderboard"]:
        last = read_progress(layout.trial(row["best_trial"]))[-1]
        assert row["objective"] == pytest.approx(last.metrics[METRIC])
