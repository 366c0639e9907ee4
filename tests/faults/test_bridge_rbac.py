"""The SLURM bridge under its own least-privilege Role, enforced: the ServiceAccount, Role,
RoleBinding and the metadata-only ValidatingAdmissionPolicy of
manifests/slurm-bridge/rbac.yaml are applied to the test bed, whose API server
authenticates bearer tokens, authorizes by RBAC (tests/kube/rbac.py) and evaluates
admission policies with CEL (tests/kube/policies.py); the bridge's kubeconfig carries a
token minted by `kubectl create token`, as docs/slurm.md says. With it the bridge takes an
experiment through SLURM to the end (the in-memory fake: its Lease, its claim and
finalizer, its status, the finalizer let go on deletion); the same token may not update,
create or delete RLExperiments, watch them, or read Secrets (403 with the API server's
message), may patch an RLExperiment's metadata and status but not its spec (403 with the
policy's message), and an unknown token is refused (401)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.base import GROUP, VERSION
from rlops.backends.slurm import SlurmBackend, SlurmSettings
from rlops.slurm_bridge.bridge import CLAIMED_BY, FINALIZER, SlurmBridge
from rlops.slurm_bridge.lease import KubeLease
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import KubeExperimentStore
from tests.faults.fakes import CLUSTER, FakeSlurm, slurm_experiment
from tests.kube.fixtures import KubeTestBed

ROOT = Path(__file__).resolve().parents[2]
PLURAL = "rlexperiments"
ACCOUNT = "rlops-slurm-bridge"
POLICY = "rlops-slurm-bridge-metadata-only"


def manifest(*kinds: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((ROOT / "manifests/slurm-bridge/rbac.yaml").read_text())
    return [d for d in docs if d["kind"] in kinds]


def apply_bridge_rbac(kube: KubeTestBed, namespace: str) -> None:
    """The bridge's ServiceAccount, Role and RoleBinding from the shipped manifest."""
    docs = manifest("ServiceAccount", "Role", "RoleBinding")
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


@pytest.fixture(scope="module")
def metadata_only(kube: KubeTestBed) -> Iterator[None]:
    """The shipped ValidatingAdmissionPolicy and its binding (cluster-scoped), removed after."""
    docs = manifest("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=True)
    yield
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        kube.kubectl("delete", kind, POLICY, "--ignore-not-found", check=True)


@pytest.fixture
def bridge_token(kube: KubeTestBed, kube_namespace: str, metadata_only: None) -> str:
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
    with kube.api_client() as admin:
        objects = kubernetes.client.CustomObjectsApi(admin)
        stored = objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "ranked")
        assert stored["metadata"]["annotations"][CLAIMED_BY] == f"{CLUSTER}/login1"
        assert stored["metadata"]["finalizers"] == [FINALIZER]
        job_id = stored["status"]["backendRef"]["jobId"]
        assert job_id in slurm.table  # submitted, status written
        slurm.table[job_id] = replace(slurm.table[job_id], state="COMPLETED", exit_code=0)
        bridge.poll()
        stored = objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "ranked")
        assert stored["status"]["phase"] == "Succeeded", stored["status"]
        objects.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "ranked")
        bridge.poll()  # lets its finalizer go: a metadata patch the policy allows
        names = [o["metadata"]["name"] for o in objects.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL)["items"]]  # fmt: skip
    client.close()
    assert "ranked" not in names


def test_the_bridge_token_may_patch_metadata_and_status_but_not_the_spec(
    kube: KubeTestBed, kube_namespace: str, bridge_client: Any
) -> None:
    import kubernetes.client

    ns = kube_namespace
    with kube.api_client() as admin:
        body = slurm_experiment("guarded")
        body["metadata"]["namespace"] = ns
        kubernetes.client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, body
        )
    custom = kubernetes.client.CustomObjectsApi(bridge_client)
    before = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "guarded")["spec"]
    spec = dict(before, stop={"timesteps": 10**9})  # a bigger budget, on the cluster's hours
    changes = [
        ({"spec": spec}, "application/merge-patch+json"),
        ([{"op": "replace", "path": "/spec", "value": spec}], "application/json-patch+json"),
    ]
    for change, kind in changes:
        message = forbidden(lambda c=change, k=kind: custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "guarded", c, _content_type=k))  # fmt: skip
        assert (
            f'rlexperiments.rlops.dev \\"guarded\\" is forbidden: ValidatingAdmissionPolicy '
            f"'{POLICY}' with binding '{POLICY}' denied request: the SLURM bridge may change "
            "an RLExperiment's metadata and status, not its spec"
        ) in message
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "guarded", {"metadata": {"annotations": {CLAIMED_BY: "x"}}}
    )
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "guarded", {"status": {"message": "from the bridge"}}
    )
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "guarded")
    assert stored["spec"] == before
    assert stored["metadata"]["annotations"][CLAIMED_BY] == "x"
    assert stored["status"]["message"] == "from the bridge"


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
