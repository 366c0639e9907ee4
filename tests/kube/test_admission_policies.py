"""ValidatingAdmissionPolicy in the emulator (tests/kube/policies.py), over HTTP as a client
sees it: a false validation denies with the kube-apiserver's message and the code of its
reason; matchConditions and request.userInfo pick whose requests a policy sees; UPDATE
sees oldObject, while a status write is another resource the rule must name; Warn warns
without denying; params come from the binding's paramRef; a CEL error fails closed
unless failurePolicy is Ignore; DELETE sees the old object; a binding's matchResources
narrows the policy to labelled namespaces."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube.apiserver import Emulator

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True,
            }},
        }],
    },
}  # fmt: skip


class Reply:
    def __init__(self, code: int, body: dict[str, Any], warnings: list[str]) -> None:
        self.code, self.body, self.warnings = code, body, warnings

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


class Client:
    def __init__(self, url: str, token: str = "emulator") -> None:
        self.url, self.token = url, token

    def __call__(
        self, method: str, path: str, body: Any = None, kind: str = "application/json"
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", kind)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return Reply(answer.status, json.loads(answer.read()),
                             answer.headers.get_all("Warning") or [])  # fmt: skip
        except urllib.error.HTTPError as refused:
            return Reply(refused.code, json.loads(refused.read()), [])

    def ok(self, method: str, path: str, body: Any = None, kind: str = "application/json") -> Any:
        reply = self(method, path, body, kind)
        assert reply.code < 300, (reply.code, reply.body)
        return reply.body


@pytest.fixture(scope="module")
def admin() -> Iterator[Client]:
    emulator = Emulator(kopf_peering=False).start()
    client = Client(emulator.url)
    client.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    for name, labels in (("team", {"policed": "yes"}), ("other", {})):
        client.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    yield client
    emulator.stop()


@pytest.fixture
def policy(admin: Client) -> Iterator[Any]:
    """Installs a policy and its binding; both are removed after the test."""
    names: list[str] = []

    def install(spec: dict[str, Any], **binding: Any) -> None:
        name = f"p{len(names)}"
        names.append(name)
        spec = {"failurePolicy": "Fail", **spec}
        admin.ok("POST", f"{ADMISSION}/validatingadmissionpolicies",
                 {"metadata": {"name": name}, "spec": spec})  # fmt: skip
        binding = {"policyName": name, "validationActions": ["Deny"], **binding}
        admin.ok("POST", f"{ADMISSION}/validatingadmissionpolicybindings",
                 {"metadata": {"name": f"{name}-binding"}, "spec": binding})  # fmt: skip

    yield install
    for name in names:
        admin.ok("DELETE", f"{ADMISSION}/validatingadmissionpolicybindings/{name}-binding")
        admin.ok("DELETE", f"{ADMISSION}/validatingadmissionpolicies/{name}")


def rules(resource: str, *operations: str, group: str = "") -> dict[str, Any]:
    rule = {"apiGroups": [group], "apiVersions": ["*"], "operations": list(operations)}
    return {"resourceRules": [{**rule, "resources": [resource]}]}


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


CONFIGMAPS = "/api/v1/namespaces/team/configmaps"


def test_a_false_validation_denies_with_its_message_and_the_code_of_its_reason(
    admin: Client, policy: Any
) -> None:
    policy({
        "matchConstraints": rules("configmaps", "CREATE", "UPDATE"),
        "validations": [
            {"expression": "size(object.data) <= 2", "message": "at most two keys"},
            {"expression": "!('secret' in object.data)", "reason": "Forbidden"},
            {"expression": "!('x' in object.data)",
             "messageExpression": "'x is ' + object.data.x"},
        ],
    })  # fmt: skip
    big = admin("POST", CONFIGMAPS, configmap("big", a="1", b="2", c="3"))
    assert (big.code, big.body["reason"]) == (422, "Invalid"), big.body
    assert big.message == (
        "configmaps \"big\" is forbidden: ValidatingAdmissionPolicy 'p0' with binding "
        "'p0-binding' denied request: at most two keys"
    )
    hidden = admin("POST", CONFIGMAPS, configmap("hidden", secret="s"))
    assert (hidden.code, hidden.body["reason"]) == (403, "Forbidden"), hidden.body
    assert hidden.message.endswith("denied request: failed expression: !('secret' in object.data)")
    assert admin("POST", CONFIGMAPS, configmap("x", x="wrong")).message.endswith(": x is wrong")
    admin.ok("POST", CONFIGMAPS, configmap("small", a="1", b="2"))
    grown = admin("PATCH", f"{CONFIGMAPS}/small", {"data": {"c": "3"}},
                  "application/merge-patch+json")  # fmt: skip
    assert grown.code == 422 and grown.message.endswith("at most two keys"), grown.body
    assert admin.ok("GET", f"{CONFIGMAPS}/small")["data"] == {"a": "1", "b": "2"}


def test_match_conditions_see_the_user_and_updates_see_the_old_object(
    admin: Client, policy: Any
) -> None:
    policy({
        "matchConstraints": rules("widgets", "UPDATE", group="example.com"),
        "matchConditions": [{"name": "robot",
                             "expression": "request.userInfo.username.endsWith(':robot')"}],
        "validations": [{"expression": "object.spec == oldObject.spec",
                         "message": "the robot may not change the spec"}],
    })  # fmt: skip
    admin.ok("POST", "/api/v1/namespaces/team/serviceaccounts", {"metadata": {"name": "robot"}})
    admin.ok("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "metadata": {"name": "robot-all"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "all"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "team"}],
    })  # fmt: skip
    everything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    admin.ok("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
             {"metadata": {"name": "all"}, "rules": everything})  # fmt: skip
    token = admin.ok("POST", "/api/v1/namespaces/team/serviceaccounts/robot/token", {})
    robot = Client(admin.url, token["status"]["token"])
    widgets = "/apis/example.com/v1/namespaces/team/widgets"
    robot.ok("POST", widgets, {"apiVersion": "example.com/v1", "kind": "Widget",
                               "metadata": {"name": "w"}, "spec": {"size": 1}})  # fmt: skip
    merge = "application/merge-patch+json"
    refused = robot("PATCH", f"{widgets}/w", {"spec": {"size": 2}}, merge)
    assert refused.code == 422, refused.body
    assert refused.message == (
        "widgets.example.com \"w\" is forbidden: ValidatingAdmissionPolicy 'p0' with binding "
        "'p0-binding' denied request: the robot may not change the spec"
    )
    robot.ok("PATCH", f"{widgets}/w", {"metadata": {"labels": {"seen": "yes"}}}, merge)
    robot.ok("PATCH", f"{widgets}/w/status", {"status": {"phase": "Ready"}}, merge)
    admin.ok("PATCH", f"{widgets}/w", {"spec": {"size": 3}}, merge)  # not the robot
    stored = admin.ok("GET", f"{widgets}/w")
    assert (stored["spec"], stored["metadata"]["labels"], stored["status"]) == (
        {"size": 3}, {"seen": "yes"}, {"phase": "Ready"})  # fmt: skip


def test_warn_and_audit_bindings_do_not_deny(admin: Client, policy: Any) -> None:
    policy({"matchConstraints": rules("configmaps", "CREATE"),
            "validations": [{"expression": "false", "message": "noted"}]},
           validationActions=["Warn", "Audit"])  # fmt: skip
    reply = admin("POST", CONFIGMAPS, configmap("warned"))
    assert reply.code == 201, reply.body
    assert any(
        "Validation failed for ValidatingAdmissionPolicy 'p0' with binding 'p0-binding': noted"
        in w for w in reply.warnings
    ), reply.warnings  # fmt: skip


def test_params_come_from_the_bindings_param_ref(admin: Client, policy: Any) -> None:
    spec = {
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": rules("configmaps", "CREATE"),
        "matchConditions": [{"name": "not-the-limits",
                             "expression": "object.metadata.name.startsWith('limited')"}],
        "validations": [{"expression": "size(object.data) <= int(params.data.most)",
                         "messageExpression": "'at most ' + params.data.most + ' keys'"}],
    }  # fmt: skip
    policy(spec, paramRef={"name": "absent", "parameterNotFoundAction": "Allow"})
    admin.ok("POST", CONFIGMAPS, configmap("limited-3", a="1", b="2"))  # no params: allowed
    admin.ok("POST", CONFIGMAPS, configmap("limits", most="1"))
    policy(spec, paramRef={"name": "limits", "namespace": "team"})
    assert admin("POST", CONFIGMAPS, configmap("limited-2", a="1", b="2")).message.endswith(
        "denied request: at most 1 keys"
    )
    admin.ok("POST", CONFIGMAPS, configmap("limited-1", a="1"))
    admin.ok("DELETE", f"{CONFIGMAPS}/limits")
    missing = admin("POST", CONFIGMAPS, configmap("limited-0"))
    assert missing.code == 422 and "no params found" in missing.message, missing.body


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_an_evaluation_error_fails_closed_unless_ignored(
    admin: Client, policy: Any, failure_policy: str
) -> None:
    policy({"failurePolicy": failure_policy, "matchConstraints": rules("configmaps", "CREATE"),
            "validations": [{"expression": "object.data.absent == 'x'"}]})  # fmt: skip
    reply = admin("POST", CONFIGMAPS, configmap(f"err-{failure_policy.lower()}", a="1"))
    if failure_policy == "Ignore":
        assert reply.code == 201, reply.body
    else:
        assert reply.code == 422, reply.body
        assert "expression 'object.data.absent == 'x'' resulted in error" in reply.message


def test_delete_sees_the_old_object(admin: Client, policy: Any) -> None:
    policy({"matchConstraints": rules("configmaps", "DELETE"),
            "validations": [{"expression": "object == null && !has(oldObject.data.keep)",
                             "message": "kept"}]})  # fmt: skip
    admin.ok("POST", CONFIGMAPS, configmap("keeper", keep="yes"))
    admin.ok("POST", CONFIGMAPS, configmap("gone"))
    refused = admin("DELETE", f"{CONFIGMAPS}/keeper")
    assert refused.code == 422 and refused.message.endswith("denied request: kept"), refused.body
    admin.ok("DELETE", f"{CONFIGMAPS}/gone")
    admin.ok("GET", f"{CONFIGMAPS}/keeper")


def test_a_bindings_match_resources_narrows_the_policy(admin: Client, policy: Any) -> None:
    policy({"matchConstraints": rules("configmaps", "CREATE"),
            "validations": [{"expression": "false", "message": "not here"}]},
           matchResources={"namespaceSelector": {"matchLabels": {"policed": "yes"}},
                           "excludeResourceRules": []})  # fmt: skip
    assert admin("POST", CONFIGMAPS, configmap("n")).code == 422
    admin.ok("POST", "/api/v1/namespaces/other/configmaps", configmap("n"))
