"""The SLURM bridge under its own least-privilege Role, enforced: the ServiceAccount, Role
and RoleBinding of manifests/slurm-bridge/rbac.yaml are applied to the test bed, whose API
server authenticates bearer tokens and authorizes by RBAC (tests/kube/rbac.py); the
bridge's kubeconfig carries a token minted by `kubectl create token`, as docs/slurm.md
says. With it the bridge takes an experiment through SLURM (the in-memory fake: its
Lease, its claim and finalizer, its status); the same token may not update, create or
delete RLExperiments, watch them, or read Secrets (403 with the API server's message), and
an unknown token is refused (401)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.base import GROUP, VERSION
from rlops.backends.slurm import SlurmBackend, SlurmSettings
from rlops.slurm_bridge.bridge import CLAIMED_BY, SlurmBridge
from rlops.slurm_bridge.lease import KubeLease
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import KubeExperimentStore
from tests.faults.fakes import CLUSTER, FakeSlurm, slurm_experiment
from tests.kube.fixtures import KubeTestBed

ROOT = Path(__file__).resolve().parents[2]
PLURAL = "rlexperiments"
ACCOUNT = "rlops-slurm-bridge"


def apply_bridge_rbac(kube: KubeTestBed, namespace: str) -> None:
    """The bridge's ServiceAccount, Role and RoleBinding from the shipped manifest."""
    docs = [
        d for d in yaml.safe_load_all((ROOT / "manifests/slurm-bridge/rbac.yaml").read_text())
        if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")
    ]  # fmt: skip
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            subject["namespace"] = namespace
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs), check=True)


def kubeconfig_with(kube: KubeTestBed, token: str, path: Path) -> Path:
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def client_of(kubeconfig: Path) -> Any:
    import kubernetes.config

    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture
def bridge_token(kube: KubeTestBed, kube_namespace: str) -> str:
    apply_bridge_rbac(kube, kube_namespace)
    done = kube.kubectl("create", "token", ACCOUNT, "-n", kube_namespace, check=True)
    return done.stdout.strip()


@pytest.fixture
def bridge_client(kube: KubeTestBed, bridge_token: str, tmp_path: Path) -> Iterator[Any]:
    client = client_of(kubeconfig_with(kube, bridge_token, tmp_path / "bridge.kubeconfig"))
    yield client
    client.close()


def forbidden(call: Any) -> str:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 403, refused.value
    return str(refused.value.body)


def test_the_bridge_works_with_its_least_privilege_token(
    kube: KubeTestBed, kube_namespace: str, bridge_token: str, tmp_path: Path
) -> None:
    import kubernetes.client

    ns = kube_namespace
    with kube.api_client() as admin:
        body = slurm_experiment("ranked")
        body["metadata"]["namespace"] = ns
        kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, body
        )
    client = client_of(kubeconfig_with(kube, bridge_token, tmp_path / "bridge.kubeconfig"))
    slurm = FakeSlurm()
    settings = SlurmSettings(run_root=tmp_path / "runs", python="/usr/bin/python3")
    bridge = SlurmBridge(
        KubeExperimentStore(kubernetes.client.CustomObjectsApi(client)),
        SlurmBackend(slurm, settings),
        BridgeSettings(cluster=CLUSTER, namespaces=[ns], bridge_id="login1"),
        lease=KubeLease(kubernetes.client.CoordinationV1Api(client), ns, CLUSTER, "login1"),
    )
    bridge.poll()
    client.close()
    with kube.api_client() as admin:
        stored = kubernetes.client.CustomObjectsApi(admin).get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "ranked"
        )
    assert stored["metadata"]["annotations"][CLAIMED_BY] == f"{CLUSTER}/login1"
    assert stored["status"]["backendRef"]["jobId"] in slurm.table  # submitted, status written


def test_the_bridge_token_may_not_touch_specs_secrets_or_watch(
    kube: KubeTestBed, kube_namespace: str, bridge_client: Any
) -> None:
    import kubernetes.client

    ns = kube_namespace
    custom = kubernetes.client.CustomObjectsApi(bridge_client)
    body = slurm_experiment("intruder")
    body["metadata"]["namespace"] = ns
    message = forbidden(
        lambda: custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    )
    assert f'User \\"system:serviceaccount:{ns}:{ACCOUNT}\\" cannot create' in message
    with kube.api_client() as admin:
        kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, body
        )
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "intruder")
    forbidden(lambda: custom.replace_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "intruder", stored))  # fmt: skip
    forbidden(lambda: custom.delete_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "intruder"))  # fmt: skip
    forbidden(lambda: custom.list_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, watch=True, timeout_seconds=1))  # fmt: skip
    forbidden(lambda: kubernetes.client.CoreV1Api(bridge_client).list_namespaced_secret(ns))
    leases = kubernetes.client.CoordinationV1Api(bridge_client)
    forbidden(lambda: leases.read_namespaced_lease("another-lease", ns))
    assert custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]  # list: ok


def test_an_unknown_token_is_unauthorized(kube: KubeTestBed, tmp_path: Path) -> None:
    import kubernetes.client
    from kubernetes.client.exceptions import ApiException

    client = client_of(kubeconfig_with(kube, "not-a-token", tmp_path / "stranger.kubeconfig"))
    with pytest.raises(ApiException) as refused:
        kubernetes.client.CoreV1Api(client).list_namespace()
    client.close()
    assert refused.value.status == 401
