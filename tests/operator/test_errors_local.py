"""Errors stay with the object they concern, end to end on the test bed (`rlops operator` as a
process, the API emulator, the KubeRay stand-in holding clusters in Initializing):

- the progress token is in a Secret the RLExperiment owns, read by the head container through
  `secretKeyRef`, and appears nowhere in the RayJob;
- a RayJob the API server refuses (403: an object-count quota) makes its experiment Failed
  with the server's reason, once: no retry follows, while the experiment next to it runs;
- a Sweep child whose `rlops.dev/parameters` annotation is garbled is marked Failed by its
  sweep; its sibling trial keeps its RayJob and the sweep keeps reconciling.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import yaml

from rlops.backends.kuberay import progress_token
from tests.builders import experiment, sweep
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import SECRET, OperatorProcess, get, names, status_of
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def test_bed_only(kube: KubeTestBed) -> None:
    if not kube.emulated:
        pytest.skip("object-count quotas and held Ray clusters are the test bed's")


def apply(kube: KubeTestBed, namespace: str, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=True)


def test_a_refused_rayjob_fails_its_experiment_once_and_the_token_stays_in_a_secret(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "one-rayjob"},
             "spec": {"hard": {"count/rayjobs.ray.io": "1"}}}  # fmt: skip
    apply(kube, ns, quota)
    with kuberay.holding():
        apply(kube, ns, experiment("first").kubernetes().obj())
        rayjob = wait_until(
            lambda: get(kube, "rayjobs", ns, "first"), 30, "the first RayJob", interval=0.5
        )
        exp = get(kube, "rlx", ns, "first")
        assert exp is not None
        token = progress_token(SECRET, ns, "first", exp["metadata"]["uid"])
        assert token not in json.dumps(rayjob)
        secret = get(kube, "secret", ns, "first-progress")
        assert secret is not None
        assert base64.b64decode(secret["data"]["token"]).decode() == token
        owner = secret["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"]) == ("RLExperiment", exp["metadata"]["uid"])

        apply(kube, ns, experiment("second").kubernetes().obj())
        status = wait_until(
            lambda: (s := status_of(kube, "rlx", ns, "second")).get("phase") == "Failed" and s,
            30,
            "the second experiment to fail",
            interval=0.5,
        )
        assert "the API server refused the RayJob second" in status["message"]
        assert "exceeded quota: one-rayjob" in status["message"]
        assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "True"
        time.sleep(8)  # retries came every 5 s before: none may come now
        assert status_of(kube, "rlx", ns, "second") == status
        assert "retrying" not in operator.log()
        assert names(kube, "rayjobs", ns) == ["first"]
        assert status_of(kube, "rlx", ns, "first")["phase"] == "Submitted"


def test_a_garbled_child_fails_alone_and_its_sweep_goes_on(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    builder = sweep("grid").param("config.training.lr", "grid", values=[0.1, 0.2])
    builder.template("placement", {"backend": "kubernetes"})
    builder.set("spec.parallelism", 2)
    with kuberay.holding():
        apply(kube, ns, builder.obj())
        wait_until(
            lambda: len(names(kube, "rayjobs", ns)) == 2, 60, "both trials' RayJobs", interval=0.5
        )
        kube.kubectl("annotate", "rlx", "grid-0", "-n", ns, "--overwrite",
                     "rlops.dev/parameters={not json", check=True)  # fmt: skip
        status = wait_until(
            lambda: (s := status_of(kube, "rlx", ns, "grid-0")).get("phase") == "Failed" and s,
            30,
            "the garbled trial to fail",
            interval=0.5,
        )
        assert "its sweep cannot read this trial: rlops.dev/parameters" in status["message"]
        wait_until(
            lambda: names(kube, "rayjobs", ns) == ["grid-1"], 30, "its RayJob to go", interval=0.5
        )
        assert status_of(kube, "rlx", ns, "grid-1")["phase"] == "Submitted"
        trials = wait_until(
            lambda: (
                (t := status_of(kube, "sweep", ns, "grid").get("trials") or {}).get("failed") == 1
                and t
            ),
            30,
            "the sweep to count one failed trial",
            interval=0.5,
        )
        assert trials["failed"] == 1
