"""The kinds the emulator serves: built-in ones and those defined by CRDs."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.kube.schema import StructuralSchema

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the URL space and how it behaves."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    printer_columns: tuple[dict[str, Any], ...] = ()
    open_api_schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    custom: bool = False  # defined by a CRD: strategic merge patch is refused

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`rlexperiments.rlops.dev`, or `pods` in the core group (as errors name it)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @functools.cached_property
    def schema(self) -> StructuralSchema | None:
        """The compiled schema, built on first use (KubeRay's are megabytes)."""
        return StructuralSchema(self.open_api_schema) if self.open_api_schema else None

    def discovery(self) -> list[dict[str, Any]]:
        """This resource's entries in an `APIResourceList`."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.status_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _builtin(
    group: str, version: str, kind: str, plural: str, namespaced: bool, **kw: Any
) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, singular=kind.lower(), **kw)


BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "", "v1", "Namespace", "namespaces", False, short_names=("ns",), status_subresource=True
    ),
    _builtin("", "v1", "Event", "events", True, short_names=("ev",)),
    _builtin(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        short_names=("po",),
        categories=("all",),
        status_subresource=True,
    ),
    _builtin("", "v1", "Secret", "secrets", True),
    _builtin("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    _builtin("", "v1", "ResourceQuota", "resourcequotas", True, short_names=("quota",)),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",)),
    _builtin("", "v1", "Service", "services", True, short_names=("svc",), categories=("all",)),
    _builtin("events.k8s.io", "v1", "Event", "events", True, short_names=("ev",)),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases", True),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
        status_subresource=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        status_subresource=True,
    ),
)


def from_crd(crd: dict[str, Any]) -> ResourceType:
    """The served resource of a CRD: its storage version (other versions are not served)."""
    spec = crd["spec"]
    names = spec["names"]
    version = next(v for v in spec["versions"] if v.get("storage"))
    return ResourceType(
        group=spec["group"],
        version=version["name"],
        kind=names["kind"],
        plural=names["plural"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        singular=names.get("singular", names["kind"].lower()),
        short_names=tuple(names.get("shortNames", ())),
        categories=tuple(names.get("categories", ())),
        status_subresource="status" in (version.get("subresources") or {}),
        printer_columns=tuple(version.get("additionalPrinterColumns", ())),
        open_api_schema=(version.get("schema") or {}).get("openAPIV3Schema"),
        custom=True,
    )


def _peering_crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


# kopf's peering resources, as its documentation defines them (open schemas).
KOPF_PEERING_CRDS: tuple[dict[str, Any], ...] = (
    _peering_crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
    _peering_crd("KopfPeering", "kopfpeerings", "Namespaced"),
)


@functools.lru_cache(maxsize=16)
def _load_yaml(path: str, mtime: float, size: int) -> tuple[dict[str, Any], ...]:
    """Parse once per process; KubeRay's 2 MB of YAML also parse once per machine (JSON cache)."""
    digest = hashlib.sha256(f"{path}:{mtime}:{size}".encode()).hexdigest()[:16]
    cached = Path(tempfile.gettempdir()) / f"rlops-kube-crds-{digest}.json"
    with contextlib.suppress(OSError, ValueError):
        return tuple(json.loads(cached.read_text()))
    with open(path, encoding="utf-8") as stream:
        docs = yaml.load_all(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        crds = tuple(d for d in docs if d and d.get("kind") == "CustomResourceDefinition")
    with contextlib.suppress(OSError):
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(crds))
        partial.replace(cached)
    return crds


def load_crds(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The CRDs in the given YAML files."""
    crds: list[dict[str, Any]] = []
    for path in paths:
        stat = path.stat()
        crds.extend(_load_yaml(str(path), stat.st_mtime, stat.st_size))
    return crds
