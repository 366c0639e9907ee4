"""End to end through the Kubernetes test bed: `rlops operator` (a real process) + the API
emulator + the KubeRay stand-in, driven with the real kubectl.

- an RLExperiment trains for real (RLlib, CartPole), its progress reaches the status within
  30 s of each iteration through the push endpoint, `kubectl get rlx` shows the columns;
- a Sweep (manifests/examples/sweep.yaml with CI budgets) fans out into trials, RayJobs and
  real training while the operator is SIGKILLed three times at random points: no trial is
  created or run twice, none is lost, the Sweep succeeds with its best trial, and
  `kubectl delete sweep` removes everything it created;
- a Ray cluster stuck Initializing fails the experiment after preRunningDeadlineSeconds;
- `rlops.dev/pause` deletes the RayJob and leaves the experiment Paused; removing it creates
  a new RayJob of the same attempt;
- of two replicas only the one with the higher peering priority acts.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.runinfo import read_progress
from tests.builders import experiment
from tests.conftest import EXAMPLES
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, get, names, status_of
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def apply(kube: KubeTestBed, namespace: str, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=True)


def tiny_training(builder: Any) -> Any:
    return builder.config(
        "training", train_batch_size_per_learner=500, minibatch_size=250, num_epochs=2
    )


def parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.training
def test_experiment_trains_and_progress_reaches_status(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    apply(kube, ns, tiny_training(experiment("cartpole")).stop(timesteps=2500).kubernetes().obj())
    lags: list[float] = []

    def finished() -> dict[str, Any] | None:
        status = status_of(kube, "rlx", ns, "cartpole")
        progress = status.get("progress")
        if progress and progress.get("updatedAt"):
            records = read_progress(operator.workdir / "runs" / ns / "cartpole")
            stamps = {r.iteration: r.timestamp for r in records}
            if progress["iteration"] in stamps:
                lags.append(parse(progress["updatedAt"]) - stamps[progress["iteration"]])
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait_until(finished, 240, "the experiment to finish", interval=1.0)
    assert status["phase"] == "Succeeded", status
    assert status["progress"]["timesteps"] >= 2500
    assert status["progress"]["percent"] == 100
    assert status["result"]["finalObjective"] == status["progress"]["episodeReturnMean"]
    assert lags and max(lags) < 30, lags
    assert status["attempts"] == 1 and status["observedGeneration"] == 1
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}

    table = kube.kubectl("get", "rlx", "-n", ns, check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "BACKEND", "RETURN", "TIMESTEPS", "AGE"]
    row = table[1].split()
    assert row[:3] == ["cartpole", "Succeeded", "kubernetes"] and int(row[4]) >= 2500

    events = kube.kubectl(
        "get", "events", "-n", ns, "-o", "jsonpath={.items[*].reason}", check=True
    ).stdout.split()
    assert sorted(events) == ["Running", "Succeeded"]  # a first submission gets none
    assert f'rlops_experiments{{backend="kubernetes",namespace="{ns}",phase="Succeeded"}} 1.0' in (
        operator.metrics()
    )


def objective(status: dict[str, Any]) -> float:
    """A trial's objective: its final result, or its last progress if the operator was down
    when the final result was posted (the runtime posts it once)."""
    result = status.get("result") or {}
    value = result.get("finalObjective", status["progress"]["episodeReturnMean"])
    return float(value)


def ci_sweep() -> dict[str, Any]:
    """manifests/examples/sweep.yaml on Kubernetes, with budgets small enough for CI."""
    sweep: dict[str, Any] = yaml.safe_load((EXAMPLES / "sweep.yaml").read_text())
    template = sweep["spec"]["template"]
    template["config"]["training"].update(
        train_batch_size_per_learner=500, minibatch_size=250, num_epochs=2
    )
    template["stop"] = {"timesteps": 1000}
    template["placement"] = {"backend": "kubernetes"}
    sweep["spec"]["seedsPerTrial"] = 1
    return sweep


@pytest.mark.training
def test_sweep_survives_operator_kills_and_cleans_up(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns, sweep = kube_namespace, ci_sweep()
    name = sweep["metadata"]["name"]
    apply(kube, ns, sweep)
    expected = [f"{name}-{i}" for i in range(4)]
    rng = random.Random(7)
    for kill in range(3):
        # Kill at a random moment while trials are being created, trained or finished.
        time.sleep(rng.uniform(2.0, 12.0))
        operator.kill()
        operator.start()
        phase = status_of(kube, "sweep", ns, name).get("phase")
        assert phase != "Failed", f"sweep failed after kill {kill + 1}"

    def done() -> str | None:
        phase = kube.kubectl("get", "sweep", name, "-n", ns, "-o", "jsonpath={.status.phase}")
        return phase.stdout if phase.stdout in ("Succeeded", "Failed") else None

    assert wait_until(done, 420, "the sweep to finish", interval=2.0) == "Succeeded"
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert trials == expected  # none lost, none extra
    for trial in trials:
        status = status_of(kube, "rlx", ns, trial)
        assert status["phase"] == "Succeeded" and status["attempts"] == 1, (trial, status)
        records = read_progress(operator.workdir / "runs" / ns / trial)
        assert {r.attempt for r in records} == {1}  # trained once: never restarted
        assert [r.iteration for r in records] == sorted({r.iteration for r in records})
    best = kube.kubectl(
        "get", "sweep", name, "-n", ns, "-o", "jsonpath={.status.bestTrial.name}", check=True
    ).stdout
    objectives = {t: objective(status_of(kube, "rlx", ns, t)) for t in trials}
    assert best == max(objectives, key=lambda t: objectives[t])
    counts = status_of(kube, "sweep", ns, name)["trials"]
    assert (counts["total"], counts["succeeded"]) == (4, 4)

    kube.kubectl("delete", "sweep", name, "-n", ns, "--wait=false", check=True)
    wait_until(
        lambda: (
            not names(kube, "rlx", ns)
            and not names(kube, "rayjobs", ns)
            and get(kube, "sweep", ns, name) is None
        ),
        60,
        "the sweep's trials and RayJobs to be deleted",
        interval=0.5,
    )


def test_stuck_ray_cluster_fails_after_the_pre_running_deadline(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    with kuberay.holding():
        apply(kube, ns, experiment("stuck").kubernetes(preRunningDeadlineSeconds=4).obj())
        status = wait_until(
            lambda: (s := status_of(kube, "rlx", ns, "stuck")).get("phase") == "Failed" and s,
            60,
            "the experiment to fail",
            interval=0.5,
        )
    assert "preRunningDeadlineSeconds=4" in status["message"]
    stalled = {c["type"]: c["status"] for c in status["conditions"]}["Stalled"]
    assert stalled == "True"
    wait_until(
        lambda: not names(kube, "rayjobs", ns), 30, "the stuck RayJob to be deleted", interval=0.5
    )


def test_pause_and_resume_run_the_same_attempt_again(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace

    def rayjob() -> dict[str, Any] | None:
        return get(kube, "rayjobs", ns, "nap")

    with kuberay.holding():
        apply(kube, ns, experiment("nap").kubernetes().obj())
        first = wait_until(rayjob, 30, "the RayJob", interval=0.5)
        reason = "rlops.dev/pause=paused by sweep s at an ASHA rung"
        kube.kubectl("annotate", "rlx", "nap", "-n", ns, reason, check=True)
        status = wait_until(
            lambda: (s := status_of(kube, "rlx", ns, "nap")).get("phase") == "Paused" and s,
            30,
            "the experiment to pause",
            interval=0.5,
        )
        assert status["message"] == "paused: paused by sweep s at an ASHA rung"
        assert status["attempts"] == 1 and "completedAt" not in status
        wait_until(
            lambda: rayjob() is None, 30, "the paused run's RayJob to be deleted", interval=0.5
        )
        assert status_of(kube, "rlx", ns, "nap")["phase"] == "Paused"  # not Failed

        resume = ("rlops.dev/pause-", "rlops.dev/promotions=1")
        kube.kubectl("annotate", "rlx", "nap", "-n", ns, *resume, check=True)
        second = wait_until(rayjob, 30, "a new RayJob", interval=0.5)
        assert second["metadata"]["uid"] != first["metadata"]["uid"]
        assert second["metadata"]["labels"]["rlops.dev/attempt"] == "1"  # the same attempt
        status = wait_until(
            lambda: (s := status_of(kube, "rlx", ns, "nap")).get("phase") == "Submitted" and s,
            30,
            "the experiment to be submitted again",
            interval=0.5,
        )
        assert status["attempts"] == 1

        def events() -> list[str]:
            return sorted(
                kube.kubectl(
                    "get", "events", "-n", ns, "-o", "jsonpath={.items[*].reason}", check=True
                ).stdout.split()
            )

        # Posted just after each status write; the first submission gets none, the resume one.
        expected = ["Paused", "Submitted"]
        wait_until(lambda: events() == expected, 10, f"the events {expected}", interval=0.5)


def test_only_the_highest_priority_replica_acts(
    kube: KubeTestBed, kube_namespace: str, tmp_path: Path, kuberay: Any
) -> None:
    ns = kube_namespace
    high = OperatorProcess(kube, ns, tmp_path / "high", priority=200)
    low = OperatorProcess(kube, ns, tmp_path / "low", priority=100)
    for replica in (high, low):
        replica.workdir.mkdir()
    try:
        high.start()
        low.start()
        wait_until(
            lambda: "Pausing the watch-stream for rlexperiments" in low.log(),
            30,
            "the low replica to pause",
            interval=0.5,
        )
        with kuberay.holding():
            apply(kube, ns, experiment("first").kubernetes().obj())
            wait_until(
                lambda: status_of(kube, "rlx", ns, "first").get("phase") == "Submitted",
                30,
                "the first experiment to be submitted",
                interval=0.5,
            )
            assert "first" in high.log() and f"rlexperiments {ns}/first" not in low.log()
            high.stop()  # a clean exit withdraws from peering: the low replica resumes
            apply(kube, ns, experiment("second").kubernetes().obj())
            wait_until(
                lambda: status_of(kube, "rlx", ns, "second").get("phase") == "Submitted",
                60,
                "the low replica to take over",
                interval=0.5,
            )
        assert f"rlexperiments {ns}/second" in low.log()
        assert json.loads(kube.kubectl("get", "rayjobs", "-n", ns, "-o", "json").stdout)["items"]
    finally:
        high.stop()
        low.stop()
