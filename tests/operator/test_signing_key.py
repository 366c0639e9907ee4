"""The Secrets the operator writes, on the test bed. The key of the progress tokens: created
once when missing, later starts (and other replicas) read the same key, a Secret the platform
made is used as it is, and an explicit RLOPS_SECRET wins. An experiment's token Secret:
replaced when the experiment owns it, never when someone else's Secret has that name."""

from __future__ import annotations

import base64

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from rlops.api.settings import Settings
from rlops.operator.kube import Kube
from rlops.operator.signing import signing_key, with_signing_key
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


def test_a_token_secret_is_replaced_only_when_the_experiment_owns_it(
    kube: KubeTestBed, kube_namespace: str
) -> None:
    def token_secret(uid: str, token: str) -> dict[str, object]:
        owner = {"apiVersion": "rlops.dev/v1alpha1", "kind": "RLExperiment", "name": "x",
                 "uid": uid, "controller": True}  # fmt: skip
        return {"metadata": {"name": "x-progress", "ownerReferences": [owner]},
                "data": {"token": base64.b64encode(token.encode()).decode()}}  # fmt: skip

    with kube.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        ours = Kube(api)
        ours.apply_secret(kube_namespace, token_secret("u-1", "old"))
        ours.apply_secret(kube_namespace, token_secret("u-1", "new"))  # the key changed
        data = core.read_namespaced_secret("x-progress", kube_namespace).data
        assert base64.b64decode(data["token"]).decode() == "new"
        with pytest.raises(ApiException) as refused:  # another owner's Secret of that name
            ours.apply_secret(kube_namespace, token_secret("u-2", "theirs"))
        assert refused.value.status in (400, 422)
        data = core.read_namespaced_secret("x-progress", kube_namespace).data
        assert base64.b64decode(data["token"]).decode() == "new"
