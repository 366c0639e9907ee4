"""The kubectl sweep end to end with every trial trained inside the image: `rlops operator` (a
real process, configured with the image and a storage claim) turns a Sweep applied with
kubectl into trials and RayJobs, and the KubeRay stand-in runs each RayJob's head pod as a
podman container from its spec. The pods mount the claim at the storage path (the operator's
storage directory here), reach the operator's progress URL on loopback, and each trial's
result.json names the image's interpreter and its pod.

Real: the operator, kubectl, podman, the image, RLlib. The Kubernetes API is the test bed's
emulator; the KubeRay operator is the stand-in.
"""

from __future__ import annotations

from typing import Any

import pytest

from rlops.api.runinfo import read_result
from tests.containers.podman import IMAGE_PYTHON
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, names, status_of
from tests.operator.test_operator_e2e import apply, ci_sweep
from tests.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.training]


def test_the_kubectl_sweep_trains_its_trials_inside_the_image(
    kube: KubeTestBed, kube_namespace: str, kuberay: Any, pod_operator: OperatorProcess
) -> None:
    storage = pod_operator.workdir / "runs"
    ns, sweep = kube_namespace, ci_sweep()
    name = sweep["metadata"]["name"]
    apply(kube, ns, sweep)

    def done() -> str | None:
        phase = status_of(kube, "sweep", ns, name).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(done, 600, "the sweep to finish", interval=2.0) == "Succeeded"
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert len(trials) == 4
    for trial in trials:
        status = status_of(kube, "rlx", ns, trial)
        assert status["phase"] == "Succeeded", (trial, status)
        assert status["progress"]["timesteps"] >= 1000  # progress reached the operator
        result = read_result(storage / ns / trial)
        assert result is not None and result.runtime is not None, trial
        assert result.runtime.python == IMAGE_PYTHON  # trained inside the image
        assert result.runtime.hostname.endswith("-head")  # in its head pod's container
