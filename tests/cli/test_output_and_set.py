"""CLI conventions: `rlops status -o json|yaml|wide` (local run directories and the
Kubernetes test bed), and `--set` read by `validate` and `render` exactly as by `run`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from rlops.cli import main
from tests.builders import experiment, sweep
from tests.cli.rundirs import write_sweep, write_trial
from tests.cli.test_status import cluster, create

__all__ = ["cluster", "create"]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    layout = write_sweep(tmp_path, "grid", [250, 500])
    write_trial(layout.trial("grid-0"), "grid-0", 0, [10.0, 80.0], 0, sweep_name="grid")
    write_trial(
        layout.trial("grid-1"), "grid-1", 1, [20.0], None, pid=os.getpid(), sweep_name="grid"
    )
    return tmp_path


def test_status_json_is_the_overview_as_data(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--root", str(runs), "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [grid] = data["sweeps"]
    assert grid["name"] == "grid" and grid["status"]["phase"] == "Running"
    assert grid["status"]["bestTrial"]["name"] == "grid-0"
    trials = {t["name"]: t for t in grid["trials"]}
    assert trials["grid-0"]["phase"] == "Succeeded" and trials["grid-0"]["objective"] == 80.0
    assert trials["grid-1"]["phase"] == "Running" and trials["grid-1"]["timesteps"] == 500
    assert trials["grid-0"]["runDir"] == str(runs / "grid" / "trials" / "grid-0")
    assert data["experiments"] == []


def test_status_yaml_equals_json(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--root", str(runs), "-o", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(["status", "--root", str(runs), "--output", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == as_json


def test_status_wide_adds_columns(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--root", str(runs)]) == 0
    narrow = capsys.readouterr().out
    assert main(["status", "--root", str(runs), "-o", "wide"]) == 0
    wide = capsys.readouterr().out

    def header(out: str, first: str) -> list[str]:
        line = next(x for x in out.splitlines() if f" {first} " in x)
        return [c.strip() for c in line.strip("┃ ").split("┃")]

    assert header(wide, "SWEEP")[10:13] == ["METRIC", "STARTED", "COMPLETED"]
    assert "METRIC" not in header(narrow, "SWEEP")
    assert header(wide, "EXPERIMENT")[8:10] == ["SWEEP", "PARAMETERS"]
    assert "PARAMETERS" not in header(narrow, "EXPERIMENT")
    assert "episode_return_mean" in wide


def test_status_rejects_an_unknown_format(runs: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["status", "--root", str(runs), "-o", "xml"])
    assert exc.value.code == 2


def test_status_json_from_a_cluster_carries_trial_parameters(
    cluster: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kube, ns = cluster
    argv = ["status", "lr", "--kubeconfig", str(kube.kubeconfig), "-n", ns, "-o", "json"]  # type: ignore[attr-defined]
    assert main(argv) == 0
    [lr] = json.loads(capsys.readouterr().out)["sweeps"]
    assert lr["namespace"] == ns and lr["status"]["backends"] == {"kubernetes": 1, "slurm": 1}
    assert {t["name"]: t["phase"] for t in lr["trials"]} == {
        "lr-0": "Succeeded",
        "lr-1": "Running",
    }


# --- --set on validate and render ----------------------------------------------------------


def write(tmp_path: Path, *docs: dict[str, object]) -> Path:
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_validate_reads_set_like_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, sweep("s").param("config.training.lr", "grid", values=[0.1]).obj())
    assert main(["validate", str(path)]) == 0
    assert main(["validate", str(path), "--set", "spec.parallelism=0"]) == 1
    assert "spec.parallelism: 0 is not allowed" in capsys.readouterr().err
    assert main(["validate", str(path), "--set", "parallelism=3"]) == 0


def test_validate_reports_a_malformed_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, experiment("e").obj())
    assert main(["validate", str(path), "--set", "spec..x=1"]) == 1
    assert "not a dotted path" in capsys.readouterr().err


def test_render_applies_set_to_every_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, experiment("e").kubernetes().obj())
    argv = ["render", str(path), "--set", "metadata.name=renamed", "--set", "resources.nodes=3"]
    assert main(argv) == 0
    *_, rayjob = yaml.safe_load_all(capsys.readouterr().out)  # the token Secret, the RayJob
    assert rayjob["kind"] == "RayJob" and rayjob["metadata"]["name"] == "renamed"
    [workers] = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert workers["replicas"] == 2  # nodes 3: a head and two workers
    # A comma list turns the experiment into a grid, as `rlops run --set` does.
    assert main(["render", str(path), "--set", "config.training.lr=0.1,0.2"]) == 0
    out = capsys.readouterr().out
    header, trial = out.split("\n", 1)
    assert header.startswith("# Sweep e:")
    annotations = yaml.safe_load(trial)["metadata"]["annotations"]
    assert json.loads(annotations["rlops.dev/parameters"]) == {"config.training.lr": 0.1}
