"""Authentication and RBAC authorization in the API server emulator, as the kube-apiserver
does them for bearer tokens:

- a request without a token, or with the kubeconfig's own token (`emulator`), is the test
  bed's administrator (group system:masters), so every existing client keeps working;
- `kubectl create token <serviceaccount>` (a TokenRequest on serviceaccounts/<name>/token)
  mints a token for `system:serviceaccount:<namespace>:<name>`, with the groups
  system:serviceaccounts, system:serviceaccounts:<namespace> and system:authenticated;
- any other token is refused with 401 Unauthorized;
- a service account's request is allowed when a rule of a Role (through a RoleBinding in
  the request's namespace) or of a ClusterRole (through a RoleBinding or a
  ClusterRoleBinding) matches its API group, resource (`plural` or `plural/subresource`),
  verb (get, list, watch, create, update, patch, delete, deletecollection) and, where the
  rule names them, the object's name; otherwise 403 Forbidden with the kube-apiserver's
  message. Discovery (`/api`, `/apis`, `/version`, `/openapi`) is open to every
  authenticated user, as system:discovery makes it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tests.kube.store import ApiError, Store

ADMIN_TOKEN = "emulator"
MASTERS = "system:masters"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]

    @property
    def admin(self) -> bool:
        return MASTERS in self.groups


ADMIN = User("system:admin", (MASTERS, "system:authenticated"))


@dataclass(frozen=True)
class Attributes:
    """What a request asks, in RBAC's terms."""

    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str | None
    name: str | None


class Authorizer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.tokens: dict[str, User] = {}

    # -- authentication ------------------------------------------------------------
    def authenticate(self, header: str | None) -> User:
        if not header:
            return ADMIN
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized()
        if token == ADMIN_TOKEN:
            return ADMIN
        user = self.tokens.get(token)
        if user is None:
            raise unauthorized()
        return user

    def mint(self, namespace: str, name: str) -> str:
        """A token for the service account `namespace/name` (which must exist)."""
        self.store.get(self.store.type_of("", "serviceaccounts"), namespace, name)
        token = secrets.token_urlsafe(32)
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                  "system:authenticated")  # fmt: skip
        self.tokens[token] = User(f"system:serviceaccount:{namespace}:{name}", groups)
        return token

    # -- authorization -------------------------------------------------------------
    def authorize(self, user: User, asked: Attributes) -> None:
        if user.admin or any(self._allows(rule, asked) for rule in self._rules(user, asked)):
            return
        raise forbidden(user, asked)

    def _rules(self, user: User, asked: Attributes) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        bindings = self._objects("rolebindings", asked.namespace) if asked.namespace else []
        bindings += self._objects("clusterrolebindings", None)
        for binding in bindings:
            if not any(_subject_is(s, user) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            namespaced = ref.get("kind") == "Role"
            where = binding["metadata"].get("namespace") if namespaced else None
            plural = "roles" if namespaced else "clusterroles"
            role = next((r for r in self._objects(plural, where)
                         if r["metadata"]["name"] == ref.get("name")), None)  # fmt: skip
            rules += (role or {}).get("rules") or []
        return rules

    def _objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        rt = self.store.type_of("rbac.authorization.k8s.io", plural)
        return list(self.store.list_objects(rt, namespace, lambda _: True))

    @staticmethod
    def _allows(rule: dict[str, Any], asked: Attributes) -> bool:
        def has(key: str, value: str) -> bool:
            values = rule.get(key) or []
            return "*" in values or value in values

        names = rule.get("resourceNames") or []
        if names and (asked.name is None or asked.name not in names):
            return False
        return (
            has("apiGroups", asked.group)
            and has("resources", asked.resource)
            and has("verbs", asked.verb)
        )


def _subject_is(subject: dict[str, Any], user: User) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        name = f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}"
        return name == user.name
    if kind == "User":
        return bool(subject.get("name") == user.name)
    if kind == "Group":
        return subject.get("name") in user.groups
    return False


def request_verb(method: str, named: bool, watch: bool) -> str:
    if method == "GET":
        return "get" if named else ("watch" if watch else "list")
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(user: User, asked: Attributes) -> ApiError:
    plural, _, sub = asked.resource.partition("/")
    qualified = f"{plural}.{asked.group}" if asked.group else plural
    subject = f'{qualified} "{asked.name}"' if asked.name else qualified
    where = f' in the namespace "{asked.namespace}"' if asked.namespace else " at the cluster scope"
    resource = f'resource "{plural}"' + (f' subresource "{sub}"' if sub else "")
    message = (
        f'{subject} is forbidden: User "{user.name}" cannot {asked.verb} {resource} '
        f'in API group "{asked.group}"{where}'
    )
    details = {"name": asked.name or "", "group": asked.group, "kind": plural}
    return ApiError(403, "Forbidden", message, details)
