"""The key of the progress tokens, kept in a Secret of the operator's own.

With `secretName` set (the chart sets it), the operator reads the key from that Secret in
its namespace at start-up and, when the Secret does not exist, creates it once with a random
key. Replicas that start together agree: the one whose create loses (409) reads the
winner's. Nothing renders the key, so `helm template`, Argo CD or Flux never rotate it, and
tokens held by running training pods stay valid across upgrades. An explicit `RLOPS_SECRET`
wins over the Secret.
"""

from __future__ import annotations

import base64
import logging
import secrets

import kubernetes.client
from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr

from rlops.api.settings import Settings

log = logging.getLogger(__name__)


def signing_key(api: kubernetes.client.ApiClient, namespace: str, name: str, key: str) -> str:
    """The key in Secret `namespace/name` under `key`, created once when missing."""
    core = kubernetes.client.CoreV1Api(api)
    for _ in range(3):
        try:
            secret = core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        else:
            value = (secret.data or {}).get(key)
            if not value:
                raise ValueError(f"Secret {namespace}/{name} has no key {key!r}")
            return base64.b64decode(value).decode()
        body = kubernetes.client.V1Secret(
            metadata=kubernetes.client.V1ObjectMeta(
                name=name, labels={"app.kubernetes.io/managed-by": "rlops"}
            ),
            type="Opaque",
            data={key: base64.b64encode(secrets.token_hex(32).encode()).decode()},
        )
        try:
            core.create_namespaced_secret(namespace, body)
            log.info("created the progress-token key in Secret %s/%s", namespace, name)
        except ApiException as exc:
            if exc.status != 409:  # another replica made it first: read theirs
                raise
    raise RuntimeError(f"Secret {namespace}/{name} could not be read or created")


def with_signing_key(api: kubernetes.client.ApiClient, settings: Settings) -> Settings:
    """`settings` with the key from the operator's Secret, unless RLOPS_SECRET gave one."""
    if "secret" in settings.model_fields_set or not settings.secret_name:
        return settings
    value = signing_key(api, settings.namespace, settings.secret_name, settings.secret_key)
    return settings.model_copy(update={"secret": SecretStr(value)})
