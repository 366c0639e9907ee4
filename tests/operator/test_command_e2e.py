"""A command trainer on the Kubernetes test bed: manifests/examples/command-sweep.yaml
applied with the real kubectl, reconciled by `rlops operator` (a real process), its trials
run as RayJobs by the KubeRay stand-in. Each trial's runtime runs the example program
(tabular Q-learning, standard library only), posts its progress to the operator, and ends
through the stop criterion; the Sweep succeeds and names its best trial.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, kubernetes_command_sweep, names, status_of
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_the_command_sweep_trains_on_kubernetes(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    sweep = kubernetes_command_sweep()
    name = sweep["metadata"]["name"]
    goal = sweep["spec"]["template"]["stop"]["episodeReturnMean"]
    kube.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sweep), check=True)

    def done() -> str | None:
        phase = status_of(kube, "sweep", ns, name).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(done, 240, "the sweep to finish", interval=1.0) == "Succeeded"
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert trials == [f"{name}-0", f"{name}-1"]
    for trial in trials:
        status = status_of(kube, "rlx", ns, trial)
        assert status["phase"] == "Succeeded", (trial, status)
        assert status["result"]["stopReason"] == "episode_return_mean"
        assert status["result"]["finalObjective"] >= goal
        assert status["progress"]["iteration"] >= 1
    best = status_of(kube, "sweep", ns, name)["bestTrial"]["name"]
    assert best in trials
