"""`rlops status`: sweeps and experiments as tables, from local run directories (read
as `rlops run` reads them, sweep status from the sweep engine) and from a cluster
(the Kubernetes test bed, through the official client), narrowed by NAME."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rlops.cli import main
from rlops.cli.overview import StatusError, local_overview
from tests.builders import experiment, sweep
from tests.cli.rundirs import write_sweep, write_trial
from tests.kube.fixtures import KubeTestBed, kube, kube_namespace

__all__ = ["kube", "kube_namespace"]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A sweep of three trials: one succeeded, one failed, one running (this process)."""
    layout = write_sweep(tmp_path, "grid", [250, 500, 1000])
    write_trial(layout.trial("grid-0"), "grid-0", 0, [10.0, 40.0, 80.0], 0, sweep_name="grid")
    write_trial(layout.trial("grid-1"), "grid-1", 1, [5.0], 1, sweep_name="grid")
    write_trial(
        layout.trial("grid-2"), "grid-2", 2, [20.0, 30.0], None, pid=os.getpid(), sweep_name="grid"
    )
    return tmp_path


def test_a_local_sweep_reads_as_the_runner_sees_it(runs: Path) -> None:
    overview = local_overview(runs)
    [view] = overview.sweeps
    trials = {t.name: t for t in view.trials}
    assert {n: t.phase for n, t in trials.items()} == {
        "grid-0": "Succeeded",
        "grid-1": "Failed",
        "grid-2": "Running",
    }
    assert trials["grid-0"].objective == 80.0
    assert trials["grid-2"].episode_return == 30.0 and trials["grid-2"].timesteps == 1000
    assert trials["grid-1"].message == "RuntimeError: boom"
    t = view.status.trials
    assert (t.total, t.succeeded, t.failed, t.running) == (3, 1, 1, 1)
    assert view.status.best_trial is not None
    assert (view.status.best_trial.name, view.status.best_trial.objective) == ("grid-0", 80.0)


def test_an_interrupted_trial_whose_process_is_gone_is_pending(tmp_path: Path) -> None:
    layout = write_sweep(tmp_path, "grid", [250])
    write_trial(layout.trial("grid-0"), "grid-0", 0, [12.0], None, pid=2**22 + 12345)
    [trial] = local_overview(tmp_path).sweeps[0].trials
    assert trial.phase == "Pending"


def test_status_prints_the_sweep_and_its_trials(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--root", str(runs)]) == 0
    out = capsys.readouterr().out
    sweep_line = next(line for line in out.splitlines() if "│ grid " in line)
    cells = [c.strip() for c in sweep_line.strip("│ ").split("│")]
    assert cells[:9] == ["grid", "Running", "3", "0", "1", "0", "1", "1", "0"]
    assert "local=3" in cells and "grid-0" in cells and "80" in cells
    assert "Trials of grid" in out and "RuntimeError: boom" in out


def test_status_name_narrows_to_one_trial(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "grid-2", "--root", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "grid-2" in out and "Running" in out and "grid-0" not in out


def test_status_of_an_unknown_name_says_where_it_looked(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "nope", "--root", str(runs)]) == 1
    assert f"no sweep or experiment 'nope' under {runs}" in capsys.readouterr().out
    with pytest.raises(StatusError, match=r"--root: .* is not a directory"):
        local_overview(runs / "missing")


# --- from a cluster ------------------------------------------------------------------------


def create(
    kube: KubeTestBed, namespace: str, plural: str, body: dict[str, Any], status: dict[str, Any]
) -> None:
    import kubernetes.client

    with kube.api_client() as client:
        api = kubernetes.client.CustomObjectsApi(client)
        api.create_namespaced_custom_object("rlops.dev", "v1alpha1", namespace, plural, body)
        name = body["metadata"]["name"]
        api.patch_namespaced_custom_object_status(
            "rlops.dev", "v1alpha1", namespace, plural, name, {"status": status}
        )


@pytest.fixture
def cluster(kube: KubeTestBed, kube_namespace: str) -> tuple[KubeTestBed, str]:
    create(
        kube,
        kube_namespace,
        "sweeps",
        sweep("lr").param("config.training.lr", "grid", values=[0.01, 0.001]).obj(),
        {
            "phase": "Running",
            "trials": {"total": 2, "running": 1, "succeeded": 1},
            "backends": {"kubernetes": 1, "slurm": 1},
            "bestTrial": {"name": "lr-0", "objective": 181.5},
        },
    )
    for i, (phase, backend, ret) in enumerate(
        [("Succeeded", "kubernetes", 181.5), ("Running", "slurm", 44.0)]
    ):
        trial = experiment(f"lr-{i}").set("metadata.labels", {"rlops.dev/sweep": "lr"}).obj()
        progress = {"iteration": 3 + i, "timesteps": 1500 + i, "episodeReturnMean": ret}
        create(
            kube,
            kube_namespace,
            "rlexperiments",
            trial,
            {"phase": phase, "backend": backend, "progress": progress},
        )
    create(
        kube,
        kube_namespace,
        "rlexperiments",
        experiment("solo").obj(),
        {"phase": "Failed", "backend": "kubernetes", "message": "RayJob failed: image pull"},
    )
    return kube, kube_namespace


def test_status_from_a_cluster_lists_sweeps_and_standalone_experiments(
    cluster: tuple[KubeTestBed, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kube, ns = cluster
    assert main(["status", "--kubeconfig", str(kube.kubeconfig), "-n", ns]) == 0
    out = capsys.readouterr().out
    sweep_line = next(line for line in out.splitlines() if "│ lr " in line)
    assert (
        "Running" in sweep_line and "kubernetes=1 slurm=1" in sweep_line and "181.5" in sweep_line
    )
    assert "solo" in out and "RayJob failed: image pull" in out
    assert "lr-1" not in out  # Trials show only under their sweep's NAME.


def test_status_of_a_sweep_in_a_cluster_shows_its_trials(
    cluster: tuple[KubeTestBed, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kube, ns = cluster
    assert main(["status", "lr", "--kubeconfig", str(kube.kubeconfig), "-n", ns]) == 0
    out = capsys.readouterr().out
    cells = [line.split("│") for line in out.splitlines() if "│" in line]
    rows = {c[1].strip(): "│".join(c) for c in cells if c[1].strip().startswith("lr-")}
    assert set(rows) == {"lr-0", "lr-1"}
    assert "Succeeded" in rows["lr-0"] and "181.5" in rows["lr-0"]
    assert "Running" in rows["lr-1"] and "slurm" in rows["lr-1"] and "1501" in rows["lr-1"]
    assert "solo" not in out


def test_status_of_a_missing_name_in_a_cluster(
    cluster: tuple[KubeTestBed, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kube, ns = cluster
    assert main(["status", "ghost", "--kubeconfig", str(kube.kubeconfig), "-n", ns]) == 1
    assert f"no Sweep or RLExperiment 'ghost' in namespace {ns}" in capsys.readouterr().out
