"""`rlops.Client` against the Kubernetes test bed: apply (a path, a dict, a model; create,
then update), get, status, wait (finished, and a timeout), stop/pause/resume/retry as the
annotations the operator acts on, and logs from the run directory once the RayJob is gone.
`import rlops` stays light: the Kubernetes client is imported by the Client, not the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import rlops
from rlops.api import RLExperiment, Sweep
from tests.builders import experiment, sweep
from tests.cli.rundirs import write_trial
from tests.cli.test_status import create
from tests.kube.fixtures import KubeTestBed

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(kube: KubeTestBed, kube_namespace: str) -> rlops.Client:
    return rlops.Client(namespace=kube_namespace, kubeconfig=kube.kubeconfig)


def test_import_rlops_loads_neither_kubernetes_nor_ray() -> None:
    heavy = "{'kubernetes', 'ray', 'kopf', 'mlflow', 'torch'}"
    code = f"import sys, rlops; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_apply_a_path_a_dict_and_a_model(client: rlops.Client, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(sweep("s").param("config.training.lr", "grid", values=[0.1]).obj())
    )
    [s] = client.apply(path)
    assert isinstance(s, Sweep) and s.metadata.namespace == client.namespace
    [e] = client.apply(experiment("e").obj())
    assert isinstance(e, RLExperiment) and e.metadata.uid
    model = RLExperiment.model_validate(experiment("e").set("spec.seed", 7).obj())
    [again] = client.apply(model)
    assert again.metadata.uid == e.metadata.uid and again.spec.seed == 7
    assert isinstance(client.get("s"), Sweep) and client.get("e").spec.seed == 7  # type: ignore[union-attr]
    assert [x.name for x in client.status().sweeps] == ["s"]


def test_apply_refuses_an_invalid_manifest(client: rlops.Client) -> None:
    with pytest.raises(ValueError, match=r"spec.parallelism: 0 is not allowed"):
        client.apply(
            sweep("s")
            .param("config.training.lr", "grid", values=[0.1])
            .set("spec.parallelism", 0)
            .obj()
        )


def test_wait_returns_a_finished_resource_and_times_out(client: rlops.Client) -> None:
    create(client_kube(client), client.namespace, "rlexperiments", experiment("done").obj(),
           {"phase": "Succeeded", "backend": "kubernetes"})  # fmt: skip
    assert client.wait("done", timeout=10).status.phase.value == "Succeeded"  # type: ignore[union-attr]
    client.apply(experiment("pending").obj())
    with pytest.raises(TimeoutError, match="pending: still Pending"):
        client.wait("pending", timeout=0.5, poll_seconds=0.1)


def client_kube(client: rlops.Client) -> KubeTestBed:
    return KubeTestBed(Path(client.kubeconfig or ""), "", Path("/tmp"))


def test_steering_and_logs(client: rlops.Client, tmp_path: Path) -> None:
    status = {"phase": "Running", "backend": "kubernetes", "attempts": 1,
              "backendRef": {"kind": "RayJob", "name": "t"}}  # fmt: skip
    create(client_kube(client), client.namespace, "rlexperiments", experiment("t").obj(), status)
    assert client.pause("t", "later").metadata.annotations == {"rlops.dev/pause": "later"}
    assert client.resume("t").metadata.annotations == {}
    assert client.retry("t").metadata.annotations == {"rlops.dev/attempt": "2"}
    assert client.stop("t").metadata.annotations["rlops.dev/stop"] == "requested"
    write_trial(tmp_path / client.namespace / "t", "t", 0, [1.0], 0, log="driver says hi\n")
    chunks: list[str] = []
    assert client.logs("t", root=tmp_path, out=chunks.append) == "driver says hi\n"
    assert chunks == ["driver says hi\n"]
