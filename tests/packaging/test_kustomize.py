"""The kustomize base and the namespaced overlay, built by the real `kubectl kustomize`.

Every object must match its Kubernetes schema (the client's models), the base must run
the operator cluster-wide with the same locked-down pod as the Helm chart, and the
overlay must drop every cluster-wide right and watch only its namespace.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.packaging.kubemodels import schema_errors

JSON = dict[str, Any]

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def kustomize(path: str) -> list[JSON]:
    assert KUBECTL is not None
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[JSON]:
    return kustomize("manifests/base")


@pytest.fixture(scope="module")
def namespaced() -> list[JSON]:
    return kustomize("manifests/overlays/namespaced")


def kinds(objects: list[JSON]) -> set[str]:
    return {o["kind"] for o in objects}


def deployment(objects: list[JSON]) -> JSON:
    (found,) = [o for o in objects if o["kind"] == "Deployment"]
    return found


@pytest.mark.parametrize("build", ["base", "namespaced"])
def test_every_object_matches_its_kubernetes_schema(
    build: str, request: pytest.FixtureRequest
) -> None:
    objects: list[JSON] = request.getfixturevalue(build)
    assert [e for o in objects for e in schema_errors(o)] == []


def operators(objects: list[JSON]) -> list[JSON]:
    """The objects but the users' ClusterRoles aggregated into edit and view (rbac-users.yaml)."""
    return [o for o in objects if not (o["metadata"].get("labels") or {}).keys()
            & {"rbac.authorization.k8s.io/aggregate-to-edit",
               "rbac.authorization.k8s.io/aggregate-to-view"}]  # fmt: skip


def test_users_with_edit_or_view_get_rlops_resources(
    base: list[JSON], namespaced: list[JSON]
) -> None:
    for objects in (base, namespaced):
        users = {o["metadata"]["name"] for o in objects if o not in operators(objects)}
        assert users == {"rlops-edit", "rlops-view"}


def test_base_installs_crds_rbac_operator_and_service(base: list[JSON]) -> None:
    assert kinds(base) == {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ValidatingWebhookConfiguration",
    }
    crds = {o["metadata"]["name"]: o for o in base if o["kind"] == "CustomResourceDefinition"}
    generated = {
        doc["metadata"]["name"]: doc
        for path in sorted((ROOT / "crds").glob("*.yaml"))
        for doc in [yaml.safe_load(path.read_text())]
    }
    assert {name: crd["spec"] for name, crd in crds.items()} == {
        name: crd["spec"] for name, crd in generated.items()
    }
    namespaced = [o for o in base if o["kind"] in {"Deployment", "Service", "ServiceAccount"}]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"rlops-system"}
    container = deployment(base)["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["operator", "--all-namespaces", "--standalone"]
    assert container["image"] == "rlops:0.1.0"


def test_base_pod_is_as_locked_down_as_the_charts(base: list[JSON]) -> None:
    values = yaml.safe_load((ROOT / "charts" / "rlops" / "values.yaml").read_text())
    pod = deployment(base)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"] == values["podSecurityContext"]
    assert container["securityContext"] == values["securityContext"]
    assert container["resources"] == values["resources"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": values["operator"]["metricsPort"],
        "progress": values["operator"]["progressPort"],
        "webhook": values["webhook"]["port"],
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def test_namespaced_overlay_has_no_cluster_wide_rights(namespaced: list[JSON]) -> None:
    assert not kinds(operators(namespaced)) & {
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
    }
    container = deployment(namespaced)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RLOPS_WEBHOOK_PORT"] == "0"  # no webhook without its configuration
    assert container["args"] == ["operator", "--namespace=rlops-experiments", "--standalone"]
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in namespaced
        if o["kind"] == "Role"
    }
    assert roles == {
        ("rlops-experiments", "rlops-operator"),
        ("rlops-system", "rlops-operator-leader-election"),
        ("rlops-system", "rlops-operator-signing-key"),
    }
    (binding,) = [
        o
        for o in namespaced
        if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == "rlops-experiments"
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rlops-operator", "namespace": "rlops-system"}
    ]


def test_overlay_role_grants_what_the_base_cluster_role_grants(
    base: list[JSON], namespaced: list[JSON]
) -> None:
    (cluster_role,) = [
        o
        for o in operators(base)
        if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "rlops-operator"
    ]
    (role,) = [
        o
        for o in namespaced
        if o["kind"] == "Role" and o["metadata"]["namespace"] == "rlops-experiments"
    ]
    # The same rules, less the cluster-scoped CRD observation a Role cannot grant.
    cluster_rules = [r for r in cluster_role["rules"] if r["apiGroups"] != ["apiextensions.k8s.io"]]
    assert role["rules"] == cluster_rules


def test_base_webhook_calls_the_operators_service(base: list[JSON]) -> None:
    (config,) = [o for o in base if o["kind"] == "ValidatingWebhookConfiguration"]
    (service,) = [o for o in base if o["kind"] == "Service"]
    container = deployment(base)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = next(p for p in service["spec"]["ports"] if p["name"] == "webhook")
    assert port["targetPort"] == "webhook"
    for hook in config["webhooks"]:
        ref = hook["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"], ref["port"]) == (
            service["metadata"]["name"],
            service["metadata"]["namespace"],
            port["port"],
        )
    assert env["RLOPS_WEBHOOK_HOST"] == "rlops-operator.rlops-system.svc"
    assert env["RLOPS_WEBHOOK_CONFIGURATION"] == config["metadata"]["name"]
    (role,) = [o for o in base if o["metadata"]["name"] == "rlops-operator-webhook"
               and o["kind"] == "ClusterRole"]  # fmt: skip
    assert role["rules"][0]["resourceNames"] == [config["metadata"]["name"]]
