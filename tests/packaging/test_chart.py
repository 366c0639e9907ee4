"""The Helm chart: lint, install and the objects it makes, with Helm's real Go library.

Helm (helm-sdkpy, the Go library behind the `helm` command) lints the chart and installs
it into a recording API server (tests/packaging/apiserver.py) in cluster mode and in
namespaced mode. Every object Helm sends is validated against the Kubernetes client's
models; then the tests check the security settings, least-privilege RBAC, the ports, the
toggles and the values schema.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.conftest import CHART, Installer, install_chart, run_helm
from tests.packaging.kubemodels import model_name, schema_errors

pytestmark = pytest.mark.helm

JSON = dict[str, Any]

NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}
EVERYTHING_ON = {
    **NAMESPACED,
    "serviceMonitor": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "peering": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "operator": {"settings": {"logLevel": "debug", "reconcileWorkers": 4}},
}

FORBIDDEN_RESOURCES = {"pods", "pods/exec", "pods/attach", "*"}
# Secrets: the operator creates (and patches) each experiment's progress-token Secret, and
# never reads, lists or watches the users' Secrets; it reads only its own key's Secret.
SECRET_VERBS = {"create", "patch"}


def by_kind(objects: list[JSON], kind: str) -> list[JSON]:
    """The objects of `kind`; ClusterRoles without those aggregated into the users' built-in
    roles (edit, view: rights of people, not of the operator; see aggregated-roles.yaml)."""
    return [o for o in objects if o["kind"] == kind and not aggregated(o)]


def aggregated(obj: JSON) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels)


def one(objects: list[JSON], kind: str) -> JSON:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(objects: list[JSON]) -> JSON:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: JSON = containers[0]
    return container


def rules_of(role: JSON) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def merged(base: JSON, override: JSON) -> JSON:
    """`override` over `base`, maps merged key by key as Helm merges values."""
    out = dict(base)
    for key, value in override.items():
        both_maps = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both_maps else value
    return out


# --- lint -------------------------------------------------------------------------------


def lint_messages(chart: Path) -> list[JSON]:
    code, answer = run_helm("lint", str(chart))
    assert code == 0, answer
    return [m for m in answer["messages"] if m["severity"] != "INFO"]


def test_lint_passes_with_default_values() -> None:
    assert lint_messages(CHART) == []


def test_lint_passes_in_namespaced_mode(tmp_path: Path) -> None:
    chart = tmp_path / "rlops"
    subprocess.run(["cp", "-r", str(CHART), str(chart)], check=True)
    values = yaml.safe_load((chart / "values.yaml").read_text())
    (chart / "values.yaml").write_text(yaml.safe_dump(merged(values, EVERYTHING_ON)))
    assert lint_messages(chart) == []


def test_lint_reports_a_broken_template(tmp_path: Path) -> None:
    chart = tmp_path / "rlops"
    subprocess.run(["cp", "-r", str(CHART), str(chart)], check=True)
    (chart / "templates" / "broken.yaml").write_text("{{ .Values.missing.key }}\n")
    assert [m["severity"] for m in lint_messages(chart)] == ["ERROR"]


# --- what Helm installs ------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, NAMESPACED, EVERYTHING_ON], ids=["cluster", "ns", "all"])
def test_every_object_matches_its_kubernetes_schema(installed: Installer, values: JSON) -> None:
    objects = installed(values)
    modelled = [o for o in objects if model_name(o) is not None]
    # The Prometheus Operator's kinds are the only ones the Kubernetes client has no model of.
    assert {o["apiVersion"] for o in objects if o not in modelled} <= {"monitoring.coreos.com/v1"}
    assert [e for o in modelled for e in schema_errors(o)] == []


def test_crds_are_installed_first(installed: Installer) -> None:
    kinds = [o["kind"] for o in installed({})]
    assert kinds[:2] == ["CustomResourceDefinition"] * 2
    names = sorted(
        o["metadata"]["name"] for o in by_kind(installed({}), "CustomResourceDefinition")
    )
    assert names == ["rlexperiments.rlops.dev", "sweeps.rlops.dev"]


def test_cluster_mode_watches_all_namespaces_with_one_cluster_role(installed: Installer) -> None:
    objects = installed({})
    assert operator_container(objects)["args"] == ["operator", "--all-namespaces", "--standalone"]
    workload = [o for o in objects if o["metadata"]["name"] == "rlops"]  # not the webhook's
    binding = one(workload, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(workload, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rlops", "namespace": "rlops-system"}
    ]
    # Only the leader-election Role, in the operator's own namespace.
    assert {
        (r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(objects, "Role")
    } == {("rlops-system", "rlops-leader-election"), ("rlops-system", "rlops-signing-key")}


def test_namespaced_mode_has_a_role_per_namespace_and_no_cluster_rights(
    installed: Installer,
) -> None:
    objects = installed(NAMESPACED)
    assert by_kind(objects, "ClusterRole") == [] and by_kind(objects, "ClusterRoleBinding") == []
    assert operator_container(objects)["args"] == [
        "operator",
        "--namespace=team-a",
        "--namespace=team-b",
        "--standalone",
    ]
    workload_roles = {
        r["metadata"]["namespace"]: r
        for r in by_kind(objects, "Role")
        if r["metadata"]["name"] == "rlops"
    }
    assert workload_roles.keys() == {"team-a", "team-b"}
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(objects, "RoleBinding")}
    for namespace in ("team-a", "team-b"):
        assert bindings[namespace]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "rlops",
        }
        assert bindings[namespace]["subjects"][0]["namespace"] == "rlops-system"


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster", "ns"])
def test_rbac_grants_what_the_operator_reconciles_and_nothing_sensitive(
    installed: Installer, values: JSON
) -> None:
    objects = installed(values)
    roles = [
        r
        for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
        if r["metadata"]["name"] == "rlops"
    ]
    assert roles
    for role in roles:
        granted = rules_of(role)
        for needed in [
            ("rlops.dev", "rlexperiments", "create"),
            ("rlops.dev", "rlexperiments", "delete"),
            ("rlops.dev", "sweeps", "watch"),
            ("rlops.dev", "rlexperiments/status", "patch"),
            ("rlops.dev", "sweeps/status", "patch"),
            ("rlops.dev", "sweeps/finalizers", "update"),
            ("ray.io", "rayjobs", "create"),
            ("ray.io", "rayjobs", "watch"),
            ("ray.io", "rayclusters", "create"),
            ("ray.io", "rayclusters", "delete"),
            ("", "events", "create"),
        ]:
            assert needed in granted, f"{role['kind']} lacks {needed}"
        assert not {res for _, res, _ in granted} & FORBIDDEN_RESOURCES
        assert {verb for _, res, verb in granted if res == "secrets"} == SECRET_VERBS
        assert "*" not in {verb for _, _, verb in granted}
        assert "*" not in {group for group, _, _ in granted}
    leases = next(
        r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-election")
    )
    assert leases["metadata"]["namespace"] == "rlops-system"
    assert {res for _, res, _ in rules_of(leases)} == {"leases"}


def test_the_operator_runs_locked_down(installed: Installer) -> None:
    objects = installed({})
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(objects)
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # The only writable place is an emptyDir at /tmp, which is also HOME.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    assert next(v for v in pod["volumes"] if v["name"] == "tmp")["emptyDir"] is not None
    assert {"name": "HOME", "value": "/tmp"} in container["env"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]


def test_probes_and_ports_are_the_operators_health_and_progress_ports(
    installed: Installer,
) -> None:
    objects = installed({})
    container = operator_container(objects)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "progress": 8081, "webhook": 9443}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service = one(objects, "Service")
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("metrics", 8080, "metrics"),
        ("progress", 8081, "progress"),
        ("webhook", 443, "webhook"),
    }
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RLOPS_PROGRESS_URL"] == "http://rlops.rlops-system.svc:8081"
    assert env["RLOPS_IMAGE"] == "rlops:0.1.0"
    assert env["RLOPS_METRICS_PORT"] == "8080" and env["RLOPS_PROGRESS_PORT"] == "8081"
    assert container["image"] == "rlops:0.1.0"


def test_the_progress_token_key_is_the_operators_to_make_and_no_render_rotates_it(
    installed: Installer,
) -> None:
    objects = installed({})
    assert by_kind(objects, "Secret") == []  # nothing rendered: helm template is stable
    env = {e["name"]: e for e in operator_container(objects)["env"]}
    assert "RLOPS_SECRET" not in env
    assert env["RLOPS_SECRET_NAME"]["value"] == "rlops-progress"
    assert env["RLOPS_SECRET_KEY"]["value"] == "secret"
    assert env["RLOPS_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    own = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-key"))
    assert own["metadata"]["namespace"] == "rlops-system"
    assert {"resourceNames": ["rlops-progress"], "verbs": ["get"]}.items() <= own["rules"][
        0
    ].items()
    assert rules_of(own) == {("", "secrets", "get"), ("", "secrets", "create")}


def test_an_existing_progress_secret_is_used_as_it_is(installed: Installer) -> None:
    objects = installed({"operator": {"progressSecret": {"existingSecret": "mine", "key": "k"}}})
    assert by_kind(objects, "Secret") == []
    env = {e["name"]: e for e in operator_container(objects)["env"]}
    assert (env["RLOPS_SECRET_NAME"]["value"], env["RLOPS_SECRET_KEY"]["value"]) == ("mine", "k")


def test_two_renders_of_the_same_values_send_the_same_objects(tmp_path: Path) -> None:
    """As `helm template` under GitOps renders again and again: nothing random, no lookup."""
    for i in range(2):
        (tmp_path / str(i)).mkdir()
    renders = [install_chart(tmp_path / str(i), EVERYTHING_ON) for i in range(2)]
    assert [code for code, _, _ in renders] == [0, 0]
    # The same objects (helm may send objects of one kind in another order each time).
    sent = [
        sorted(objects, key=lambda o: json.dumps(o, sort_keys=True)) for _, _, objects in renders
    ]
    assert sent[0] == sent[1]
    assert "lookup" not in "".join(p.read_text() for p in (CHART / "templates").iterdir())


def test_users_with_edit_or_view_get_rlops_resources(installed: Installer) -> None:
    roles = {r["metadata"]["name"]: r for r in installed({}) if aggregated(r)}
    edit, view = roles["rlops-edit"], roles["rlops-view"]
    labels = edit["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    for verb in ("create", "patch", "delete", "list"):
        for resource in ("rlexperiments", "sweeps"):
            assert ("rlops.dev", resource, verb) in rules_of(edit)
    assert {verb for _, _, verb in rules_of(view)} == {"get", "list", "watch"}
    assert {group for group, _, _ in rules_of(edit) | rules_of(view)} == {"rlops.dev"}
    off = installed({"rbac": {"aggregateToBuiltinRoles": False}})
    assert not [r for r in off if aggregated(r)]


def test_optional_objects_are_off_by_default(installed: Installer) -> None:
    kinds = {o["kind"] for o in installed({})}
    assert kinds == {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "ValidatingWebhookConfiguration",
    }


def test_toggles_add_service_monitor_network_policy_peering_and_settings(
    installed: Installer,
) -> None:
    objects = installed(EVERYTHING_ON)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        one(objects, "Service")["metadata"]["labels"].items()
    )
    policy = one(objects, "NetworkPolicy")
    assert {r["ports"][0]["port"] for r in policy["spec"]["ingress"]} == {"metrics", "progress"}
    # namespaced mode with a self-signed certificate: no webhook, so no port for it
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress = [{p["port"] for p in rule["ports"]} for rule in policy["spec"]["egress"]]
    assert egress == [{53}, {443, 6443}]
    role = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "rlops")
    assert {("kopf.dev", "kopfpeerings", v) for v in ("watch", "create", "patch")} <= rules_of(role)
    assert "--peering=rlops" in operator_container(objects)["args"]
    crds = {o["metadata"]["name"] for o in by_kind(objects, "CustomResourceDefinition")}
    assert {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"} <= crds
    env = {e["name"]: e.get("value") for e in operator_container(objects)["env"]}
    assert env["RLOPS_LOG_LEVEL"] == "debug"
    assert env["RLOPS_RECONCILE_WORKERS"] == "4"


def test_values_schema_reports_every_bad_value_at_once(tmp_path: Path) -> None:
    bad = {
        "watchNamespaces": ["Team_A"],
        "replicaCount": "one",
        "operatr": {},
        "operator": {"metricsPort": 0},
    }
    code, answer, objects = install_chart(tmp_path, bad)
    assert code != 0
    for complaint in ("/watchNamespaces/0", "/replicaCount", "'operatr'", "/operator/metricsPort"):
        assert complaint in answer["error"]
    # Helm installs crds/ before it checks the values; nothing of the release follows.
    assert {o["kind"] for o in objects} <= {"CustomResourceDefinition"}


def test_several_replicas_without_peering_are_refused(tmp_path: Path) -> None:
    code, answer, objects = install_chart(tmp_path, {"replicaCount": 2})
    assert code != 0
    assert "replicaCount > 1 needs peering.enabled" in answer["error"]
    assert {o["kind"] for o in objects} <= {"CustomResourceDefinition"}


# --- the validating admission webhook -------------------------------------------------


def test_the_webhook_validates_both_kinds_with_a_self_signed_certificate(
    installed: Installer,
) -> None:
    objects = installed({})
    config = one(objects, "ValidatingWebhookConfiguration")
    hooks = {h["name"]: h for h in config["webhooks"]}
    assert hooks.keys() == {"rlexperiments.validation.rlops.dev", "sweeps.validation.rlops.dev"}
    for plural in ("rlexperiments", "sweeps"):
        hook = hooks[f"{plural}.validation.rlops.dev"]
        assert hook["clientConfig"]["service"] == {
            "namespace": "rlops-system",
            "name": "rlops",
            "port": 443,
            "path": f"/validate-{plural}",
        }
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["rules"][0]["resources"] == [plural]
        assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    env = {e["name"]: e.get("value") for e in operator_container(objects)["env"]}
    assert env["RLOPS_WEBHOOK_PORT"] == "9443"
    assert env["RLOPS_WEBHOOK_HOST"] == "rlops.rlops-system.svc"
    assert env["RLOPS_WEBHOOK_CONFIGURATION"] == config["metadata"]["name"]
    role = next(r for r in by_kind(objects, "ClusterRole") if r["metadata"]["name"] != "rlops")
    assert role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [config["metadata"]["name"]],
            "verbs": ["get", "update", "patch"],
        }
    ]


def test_the_webhook_takes_its_certificate_from_cert_manager(installed: Installer) -> None:
    objects = installed({**NAMESPACED, "webhook": {"certificate": "certManager"}})
    config = one(objects, "ValidatingWebhookConfiguration")
    annotations = config["metadata"]["annotations"]
    assert annotations["cert-manager.io/inject-ca-from"] == "rlops-system/rlops-webhook"
    selector = config["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]
    assert selector["values"] == ["team-a", "team-b"]
    certificate = one(objects, "Certificate")
    assert "rlops.rlops-system.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": "rlops-webhook"}
    assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-tls")
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    env = {e["name"]: e.get("value") for e in operator_container(objects)["env"]}
    assert env["RLOPS_WEBHOOK_CERT_DIR"] == "/etc/rlops/webhook"
    assert "RLOPS_WEBHOOK_CONFIGURATION" not in env
    assert by_kind(objects, "ClusterRole") == []  # namespaced mode keeps no cluster rights


def test_namespaced_mode_with_a_self_signed_certificate_has_no_webhook(
    installed: Installer,
) -> None:
    objects = installed(NAMESPACED)
    assert by_kind(objects, "ValidatingWebhookConfiguration") == []
    env = {e["name"] for e in operator_container(objects)["env"]}
    assert not {n for n in env if n.startswith("RLOPS_WEBHOOK")}


def test_a_self_signed_webhook_with_several_replicas_is_refused(tmp_path: Path) -> None:
    code, answer, _ = install_chart(tmp_path, {"replicaCount": 2, "peering": {"enabled": True}})
    assert code != 0
    assert "webhook.certificate selfSigned serves one replica" in answer["error"]
