"""The key of the progress tokens on the test bed: the operator creates its Secret once when
it is missing, later starts (and other replicas) read the same key, a Secret the platform
made is used as it is, and an explicit RLOPS_SECRET wins over any Secret."""

from __future__ import annotations

import base64

import kubernetes.client

from rlops.operator.signing import signing_key, with_signing_key
from rlops.settings import Settings
from tests.kube.fixtures import KubeTestBed


def test_the_key_is_made_once_and_then_read(kube: KubeTestBed, kube_namespace: str) -> None:
    with kube.api_client() as api:
        first = signing_key(api, kube_namespace, "rlops-progress", "secret")
        assert len(first) == 64
        assert signing_key(api, kube_namespace, "rlops-progress", "secret") == first
        stored = kubernetes.client.CoreV1Api(api).read_namespaced_secret(
            "rlops-progress", kube_namespace
        )
        assert base64.b64decode(stored.data["secret"]).decode() == first
        settings = Settings(secret_name="rlops-progress", namespace=kube_namespace)
        assert with_signing_key(api, settings).secret.get_secret_value() == first


def test_a_given_secret_or_key_is_used_as_it_is(kube: KubeTestBed, kube_namespace: str) -> None:
    with kube.api_client() as api:
        body = {
            "metadata": {"name": "mine"},
            "data": {"k": base64.b64encode(b"platform-key").decode()},
        }
        kubernetes.client.CoreV1Api(api).create_namespaced_secret(kube_namespace, body)
        settings = Settings(secret_name="mine", secret_key="k", namespace=kube_namespace)
        assert with_signing_key(api, settings).secret.get_secret_value() == "platform-key"
        explicit = Settings(secret="given", secret_name="mine", namespace=kube_namespace)
        assert with_signing_key(api, explicit).secret.get_secret_value() == "given"
