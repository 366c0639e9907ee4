"""A Sweep with `placement.kubernetes.sharedCluster` trained inside the image, against the same
sweep with a RayCluster per trial, in one run.

`rlops operator` (a real process, configured with the image and a storage claim) makes one
RayCluster for the shared sweep; the KubeRay stand-in runs its head pod as a podman container
of the image (tests/kube/kuberay_clusters.py) and submits each trial's clusterSelector RayJob
to that head through the trial's restricted K8sJobMode submitter pod, with the cluster's token.
Checked: three trials, two at a time, each keep their own RLExperiment, status, progress, run
directory, driver log and RayJob deadline, and all train in the one head container; the
cluster is owned by the Sweep and is gone, with its containers, once the sweep ends. Then the
same sweep without the setting runs each trial on a cluster of its own.

Figure: per-trial start-up, the RLExperiment's creation to the end of its first training
iteration (its first progress record), both ways; a trial that starts on the warm shared
cluster starts faster than the median trial with a cluster of its own. The figures are
printed (run with `-s`) and written as JSON to `$RLOPS_BENCH_JSON` when set.

Real: the operator, kubectl, podman, the image, Ray's job API, RLlib. The Kubernetes API is
the test bed's emulator; the KubeRay operator is the stand-in.
"""

from __future__ import annotations

import json
import os
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rlops.api.runinfo import read_progress, read_result
from tests.containers.podman import IMAGE_PYTHON
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, get, names, status_of
from tests.operator.test_operator_e2e import apply, ci_sweep
from tests.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.training]

TRIALS = 3


def small_sweep(name: str, shared: bool) -> dict[str, Any]:
    """Three PPO trials of 1,000 steps, two at a time, each with a deadline."""
    sweep = ci_sweep()
    sweep["metadata"]["name"] = name
    sweep["spec"]["parameters"] = {
        "config.training.lr": {"type": "grid", "values": [0.0003, 0.001, 0.003]}
    }
    sweep["spec"]["parallelism"] = 2
    sweep["spec"]["template"]["stop"]["wallTimeSeconds"] = 900
    if shared:
        sweep["spec"]["placement"] = {"kubernetes": {"sharedCluster": True}}
    return sweep


def created(body: dict[str, Any]) -> float:
    return parse_stamp(body["metadata"]["creationTimestamp"])


def run_sweep(
    kube: KubeTestBed, ns: str, sweep: dict[str, Any], watch: Any = None
) -> tuple[list[str], dict[str, Any]]:
    """Apply the sweep, wait for it to succeed (calling `watch` meanwhile); its trials, and
    the last state of each trial's RayJob seen meanwhile."""
    name = sweep["metadata"]["name"]
    rayjobs: dict[str, Any] = {}
    apply(kube, ns, sweep)

    def done() -> str | None:
        if watch is not None:
            watch()
        for job in names(kube, "rayjob", ns, f"rlops.dev/sweep={name}"):
            body = get(kube, "rayjob", ns, job)
            rayjobs[job] = body or rayjobs.get(job)
        phase = status_of(kube, "sweep", ns, name).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(done, 900, f"the sweep {name} to finish", interval=2.0) == "Succeeded"
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert len(trials) == TRIALS
    return trials, rayjobs


def start_ups(
    kube: KubeTestBed, ns: str, runs: Path, trials: list[str], rayjobs: dict[str, Any]
) -> dict[str, dict[str, float | None]]:
    """Per trial, seconds from its creation to its Ray job's start (`rayJobInfo.startTime`:
    the wait for a cluster and the submission) and to the end of its first iteration."""
    figures: dict[str, dict[str, float | None]] = {}
    for trial in trials:
        records = read_progress(runs / ns / trial)
        assert records, trial
        body = get(kube, "rlx", ns, trial)
        assert body is not None
        start = (((rayjobs.get(trial) or {}).get("status") or {}).get("rayJobInfo") or {}).get(
            "startTime"
        )
        figures[trial] = {
            "to_job_start": round(parse_stamp(start) - created(body), 1) if start else None,
            "to_first_iteration": round(records[0].timestamp - created(body), 1),
        }
    return figures


def parse_stamp(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_shared_cluster_runs_every_trial_and_starts_them_sooner(
    kube: KubeTestBed, kube_namespace: str, kuberay: Any, pod_operator: OperatorProcess
) -> None:
    ns, runs = kube_namespace, pod_operator.workdir / "runs"
    cluster = "shared-ray"
    seen: dict[str, Any] = {"cluster": None}

    def watch() -> None:
        if seen["cluster"] is None:
            body = get(kube, "raycluster", ns, cluster)
            if body is not None and (body.get("status") or {}).get("state") == "ready":
                seen["cluster"] = body

    trials, rayjobs = run_sweep(kube, ns, small_sweep("shared", shared=True), watch)
    assert seen["cluster"] is not None, "the shared RayCluster never became ready"
    owner = seen["cluster"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Sweep", "shared")
    # The cluster goes when the sweep ends, and its containers with it.
    assert wait_until(lambda: get(kube, "raycluster", ns, cluster) is None, 60)
    assert wait_until(lambda: kuberay.cluster_pods(ns, cluster) is None, 60)
    for trial in trials:
        status = status_of(kube, "rlx", ns, trial)
        assert status["phase"] == "Succeeded", (trial, status)
        assert status["progress"]["timesteps"] >= 1000  # its own progress reached the operator
        result = read_result(runs / ns / trial)
        assert result is not None and result.runtime is not None, trial
        assert result.runtime.python == IMAGE_PYTHON
        assert result.runtime.hostname == f"{cluster}-head"  # trained in the shared head
        assert (runs / ns / trial / "attempts" / "1.log").stat().st_size > 0  # its own log
        job = rayjobs.get(trial)
        assert job is not None, f"no RayJob of {trial} was seen"
        assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster}
        assert "rayClusterSpec" not in job["spec"]
        assert job["spec"]["activeDeadlineSeconds"] >= 900  # its own deadline
    shared = start_ups(kube, ns, runs, trials, rayjobs)

    own_trials, own_rayjobs = run_sweep(kube, ns, small_sweep("own", shared=False))
    own = start_ups(kube, ns, runs, own_trials, own_rayjobs)
    for trial in own_trials:
        result = read_result(runs / ns / trial)
        assert result is not None and result.runtime is not None
        assert result.runtime.hostname != f"{cluster}-head"

    first = {name: f["to_first_iteration"] or 0.0 for name, f in {**shared, **own}.items()}
    figure = {
        "start_up_seconds_shared": shared,
        "start_up_seconds_own_cluster": own,
        "median_shared": statistics.median(first[t] for t in trials),
        "median_own_cluster": statistics.median(first[t] for t in own_trials),
        # The third trial of each: the shared cluster was up already; its own was not.
        "warm_shared": first[trials[-1]],
        "third_own_cluster": first[own_trials[-1]],
    }
    print(json.dumps(figure, indent=2))
    if os.environ.get("RLOPS_BENCH_JSON"):
        Path(os.environ["RLOPS_BENCH_JSON"]).write_text(json.dumps(figure, indent=2) + "\n")
    assert figure["warm_shared"] < figure["median_own_cluster"], figure
