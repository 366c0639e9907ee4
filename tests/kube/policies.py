"""ValidatingAdmissionPolicy in the emulator (admissionregistration.k8s.io/v1), with CEL.

As the kube-apiserver does (before the validating webhooks), every
ValidatingAdmissionPolicyBinding whose policy selects a request is evaluated on it:

- selection: the policy's `matchConstraints` and the binding's `matchResources`
  (`resourceRules` by API group, version, operation and resource or `plural/subresource`,
  `excludeResourceRules`, `namespaceSelector` and `objectSelector` by labels), then the
  policy's `matchConditions` (CEL; all must be true);
- CEL variables: `object` (null on DELETE), `oldObject` (null on CREATE), `request`
  (operation, name, namespace, kind, resource, subResource, dryRun and
  `userInfo.username`/`groups` of the authenticated user), `params` (the object the
  binding's `paramRef.name` names, of the policy's `paramKind`), `namespaceObject` and
  `variables` (the policy's `variables`, in order);
- each of the policy's `validations` that is false fails with its `message`,
  `messageExpression` or `failed expression: <expression>`, and its `reason` (default
  Invalid); a CEL error fails the request under `failurePolicy: Fail` (the default) and is
  skipped under Ignore;
- the binding's `validationActions`: Deny answers the first failure as the API server does,
  `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with binding
  '<binding>' denied request: <message>`, with code 422 for Invalid, 403 Forbidden, 401
  Unauthorized, 413 RequestEntityTooLarge; Warn adds a warning; Audit does nothing (the
  emulator keeps no audit log).

Not emulated: type checking (`status.typeChecking`), a `paramRef.selector`, the
`authorizer` variable, CEL's cost budget and auditAnnotations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from celpy import celtypes

from tests.kube.admission import matches_rule
from tests.kube.cel import evaluate
from tests.kube.rbac import User
from tests.kube.resources import ResourceType
from tests.kube.store import ApiError, Obj, Store

GROUP, VERSION = "admissionregistration.k8s.io", "v1"
POLICIES, BINDINGS = "validatingadmissionpolicies", "validatingadmissionpolicybindings"
_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}


@dataclass(frozen=True)
class Request:
    """One write as the policies see it."""

    rt: ResourceType
    operation: str  # CREATE, UPDATE or DELETE
    subresource: str | None
    namespace: str | None
    name: str
    user: User
    dry_run: bool = False


class _Failure(Exception):
    def __init__(self, message: str, reason: str = "Invalid") -> None:
        super().__init__(message)
        self.message, self.reason = message, reason


class _NoParams(Exception):
    """The binding's params are missing and its parameterNotFoundAction is Allow."""


def _labels_match(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions); absent selects everything."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for term in selector.get("matchExpressions") or []:
        key, op, values = term["key"], term["operator"], term.get("values") or []
        found = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op)
        if not found:
            return False
    return True


class Policies:
    """The ValidatingAdmissionPolicies and their bindings stored in `store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _all(self, plural: str) -> list[Obj]:
        rt = self.store.lookup(GROUP, VERSION, plural)
        return [] if rt is None else self.store.list_objects(rt, None, lambda _: True)

    def selected(self, request: Request) -> list[tuple[Obj, Obj]]:
        """(policy, binding) pairs whose resource rules select the request."""
        policies = {p["metadata"]["name"]: p for p in self._all(POLICIES)}
        if not policies:
            return []
        pairs = []
        for binding in self._all(BINDINGS):
            policy = policies.get((binding.get("spec") or {}).get("policyName", ""))
            if policy is None:
                continue
            constraints = [
                (policy.get("spec") or {}).get("matchConstraints"),
                (binding.get("spec") or {}).get("matchResources"),
            ]
            if all(self._rules_select(c, request) for c in constraints if c is not None):
                pairs.append((policy, binding))
        return pairs

    @staticmethod
    def _rules_select(constraints: Obj, request: Request) -> bool:
        def any_rule(key: str) -> bool:
            return any(
                matches_rule(rule, request.rt, request.operation, request.subresource)
                for rule in constraints.get(key) or []
            )

        # a binding's matchResources without resourceRules keeps all the policy's
        included = not constraints.get("resourceRules") or any_rule("resourceRules")
        return included and not any_rule("excludeResourceRules")

    def check(
        self,
        request: Request,
        pairs: list[tuple[Obj, Obj]],
        obj: Obj | None,
        old: Obj | None,
        warnings: list[str],
    ) -> None:
        """Evaluate the selected policies on the request; raise the API error of the
        first denial and add the warnings of Warn bindings."""
        namespace_obj = self._namespace(request.namespace)
        denial: ApiError | None = None
        for policy, binding in pairs:
            failures = self._failures(request, policy, binding, obj, old, namespace_obj)
            for message, reason in failures:
                who = f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
                who += f"'{binding['metadata']['name']}'"
                actions = (binding.get("spec") or {}).get("validationActions") or []
                if "Warn" in actions:
                    warnings.append(f"Validation failed for {who}: {message}")
                if "Deny" in actions and denial is None:
                    text = (
                        f'{request.rt.group_resource} "{request.name}" is forbidden: '
                        f"{who} denied request: {message}"
                    )
                    details = {
                        "name": request.name,
                        "group": request.rt.group,
                        "kind": request.rt.plural,
                        "causes": [{"message": text}],
                    }
                    denial = ApiError(_CODES.get(reason, 422), reason, text, details)
        if denial is not None:
            raise denial

    def _namespace(self, namespace: str | None) -> Obj | None:
        rt = self.store.lookup("", "v1", "namespaces")
        if namespace is None or rt is None:
            return None
        try:
            return self.store.get(rt, None, namespace)
        except ApiError:
            return None

    def _failures(
        self,
        request: Request,
        policy: Obj,
        binding: Obj,
        obj: Obj | None,
        old: Obj | None,
        namespace_obj: Obj | None,
    ) -> Iterator[tuple[str, str]]:
        """(message, reason) of each failed validation of one binding."""
        spec = policy.get("spec") or {}
        ignore = spec.get("failurePolicy", "Fail") == "Ignore"
        subject = obj if obj is not None else old or {}
        labels = (subject.get("metadata") or {}).get("labels") or {}
        ns_labels = ((namespace_obj or {}).get("metadata") or {}).get("labels") or {}
        for constraint in (spec.get("matchConstraints"), (binding.get("spec") or {}).get(
                "matchResources")):  # fmt: skip
            if constraint and not (
                _labels_match(constraint.get("objectSelector"), labels)
                and (
                    not request.rt.namespaced
                    or _labels_match(constraint.get("namespaceSelector"), ns_labels)
                )
            ):
                return
        try:
            context = self._context(request, spec, binding, obj, old, namespace_obj)
            for condition in spec.get("matchConditions") or []:
                if not _verdict(condition["expression"], context):
                    return
            for validation in spec.get("validations") or []:
                expression = validation["expression"]
                if _verdict(expression, context):
                    continue
                message = validation.get("message") or f"failed expression: {expression}"
                if "messageExpression" in validation:
                    message = str(_expression(validation["messageExpression"], context))
                yield message, validation.get("reason") or "Invalid"
        except _NoParams:
            return
        except _Failure as failure:
            if not ignore:
                yield failure.message, failure.reason

    def _context(
        self,
        request: Request,
        spec: Obj,
        binding: Obj,
        obj: Obj | None,
        old: Obj | None,
        namespace_obj: Obj | None,
    ) -> dict[str, Any]:
        rt = request.rt
        context: dict[str, Any] = {
            "object": obj,
            "oldObject": old,
            "params": self._params(request, spec, binding),
            "namespaceObject": namespace_obj,
            "request": {
                "kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                "resource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
                "subResource": request.subresource or "",
                "name": request.name,
                "namespace": request.namespace or "",
                "operation": request.operation,
                "userInfo": {"username": request.user.name, "groups": list(request.user.groups)},
                "dryRun": request.dry_run,
            },
        }
        computed: dict[str, Any] = {}
        for variable in spec.get("variables") or []:
            computed[variable["name"]] = _expression(
                variable["expression"], {**context, "variables": computed}
            )
        context["variables"] = computed
        return context

    def _params(self, request: Request, spec: Obj, binding: Obj) -> Obj | None:
        kind = spec.get("paramKind")
        ref = (binding.get("spec") or {}).get("paramRef")
        if not kind:
            return None
        if not ref:
            raise _Failure(
                "failed to configure binding: paramRef is required when paramKind is set"
            )
        group, _, version = kind.get("apiVersion", "").rpartition("/")
        rt = next(
            (t for gv, types in self.store.group_versions().items() for t in types
             if gv == kind.get("apiVersion") and t.kind == kind.get("kind")),
            None,
        )  # fmt: skip
        found: Obj | None = None
        if rt is not None and "name" in ref:
            namespace = (ref.get("namespace") or request.namespace) if rt.namespaced else None
            try:
                found = self.store.get(rt, namespace, ref["name"])
            except ApiError:
                found = None
        if found is None and ref.get("parameterNotFoundAction", "Deny") != "Deny":
            raise _NoParams
        if found is None:
            raise _Failure(
                f"failed to configure binding: no params found for policy binding with "
                f"`Deny` parameterNotFoundAction ({group or 'core'}/{version} "
                f"{kind.get('kind')} {ref.get('name', '')!r})"
            )
        return found


def _verdict(expression: str, context: dict[str, Any]) -> bool:
    result = _expression(expression, context)
    if not isinstance(result, celtypes.BoolType):
        raise _Failure(f"expression '{expression}' resulted in {type(result).__name__}, not bool")
    return bool(result)


def _expression(expression: str, context: dict[str, Any]) -> Any:
    try:
        return evaluate(expression, **context)
    except Exception as exc:  # a CEL parse or evaluation error
        raise _Failure(f"expression '{expression}' resulted in error: {exc}") from None
