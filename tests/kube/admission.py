"""Validating admission webhooks in the emulator: AdmissionReview v1 over HTTPS.

As the kube-apiserver does, a create or update of a resource that some
ValidatingWebhookConfiguration's rules select is first carried out as a dry run
(defaults filled in, the CRD's schema checked), then sent to each webhook as an
AdmissionReview; a denial becomes the API error `admission webhook "NAME" denied the
request: MESSAGE` (code from the webhook's status, at least 400). A webhook that
cannot be called fails the request (failurePolicy Fail, the default) or is skipped
(Ignore). TLS is verified against the webhook's caBundle.

What the emulator cannot do, having no cluster network: a `service` reference is
called at 127.0.0.1 on the reference's port (default 443), with TLS verified for
the name `<service>.<namespace>.svc` as the real server does. namespaceSelector,
objectSelector and matchConditions are not evaluated (every object matches).
"""

from __future__ import annotations

import base64
import json
import ssl
import uuid

import aiohttp

from tests.kube.resources import ResourceType
from tests.kube.store import ApiError, Obj, Store

GROUP, VERSION, PLURAL = "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"


def matches_rule(rule: Obj, rt: ResourceType, operation: str, subresource: str | None) -> bool:
    """Whether a RuleWithOperations (webhooks, admission policies) selects the request."""

    def has(values: list[str] | None, value: str) -> bool:
        return bool(values) and ("*" in (values or []) or value in (values or []))

    resource = rt.plural if subresource is None else f"{rt.plural}/{subresource}"
    resources = rule.get("resources") or []
    scope = rule.get("scope", "*")
    return (
        has(rule.get("apiGroups"), rt.group)
        and has(rule.get("apiVersions"), rt.version)
        and has(rule.get("operations"), operation)
        and (resource in resources or (subresource is None and "*" in resources))
        and (scope == "*" or (scope == "Namespaced") == rt.namespaced)
    )


class Webhooks:
    """The ValidatingWebhookConfigurations stored in `store`, called as the server calls them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def selected(self, rt: ResourceType, operation: str, subresource: str | None) -> list[Obj]:
        config_type = self.store.lookup(GROUP, VERSION, PLURAL)
        if config_type is None:
            return []
        return [
            webhook
            for config in self.store.list_objects(config_type, None, lambda _: True)
            for webhook in config.get("webhooks") or []
            if any(matches_rule(r, rt, operation, subresource) for r in webhook.get("rules") or [])
        ]

    async def review(
        self,
        rt: ResourceType,
        operation: str,
        obj: Obj,
        old: Obj | None,
        dry_run: bool,
        webhooks: list[Obj],
        warnings: list[str],
    ) -> None:
        """Ask every selected webhook; raise the API error of the first denial."""
        meta = obj.get("metadata") or {}
        request = {
            "uid": str(uuid.uuid4()),
            "kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "resource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
            "requestKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "requestResource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "operation": operation,
            "userInfo": {"username": "emulator", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
        }
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
        for webhook in webhooks:
            name = webhook.get("name", "")
            try:
                answer = await _call(webhook, {**review, "request": request})
            except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError) as exc:
                if webhook.get("failurePolicy", "Fail") == "Ignore":
                    continue
                message = (
                    f'Internal error occurred: failed calling webhook "{name}": '
                    f"failed to call webhook: {exc}"
                )
                raise ApiError(500, "InternalError", message) from None
            response = answer.get("response") or {}
            warnings.extend(response.get("warnings") or [])
            if response.get("allowed"):
                continue
            status = response.get("status") or {}
            denied = f'admission webhook "{name}" denied the request'
            text = status.get("message") or status.get("reason")
            message = f"{denied}: {text}" if text else f"{denied} without explanation"
            code = max(int(status.get("code") or 400), 400)
            raise ApiError(code, status.get("reason") or "", message)


async def _call(webhook: Obj, review: Obj) -> Obj:
    config = webhook.get("clientConfig") or {}
    context = ssl.create_default_context()
    if config.get("caBundle"):
        context = ssl.create_default_context(
            cadata=base64.b64decode(config["caBundle"]).decode("ascii")
        )
    server_hostname: str | None = None
    if "url" in config:
        url = config["url"]
    elif "service" in config:
        service = config["service"]
        port = service.get("port", 443)
        url = f"https://127.0.0.1:{port}{service.get('path') or '/'}"
        server_hostname = f"{service['name']}.{service['namespace']}.svc"
    else:
        raise ValueError("the webhook's clientConfig has neither url nor service")
    timeout = aiohttp.ClientTimeout(total=float(webhook.get("timeoutSeconds", 10)))
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=review, ssl=context, server_hostname=server_hostname) as reply,
    ):
        if reply.status != 200:
            raise ValueError(f"the webhook answered {reply.status} {reply.reason}")
        body: Obj = json.loads(await reply.read())
        return body
