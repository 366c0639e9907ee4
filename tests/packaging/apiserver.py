"""Just enough of a Kubernetes API for `helm install` to render a chart and send its objects.

No kube-apiserver can run here. Helm's Go library needs a server to install into: it
reads the version and the discovery documents, creates CRDs first, GETs every object to
look for conflicts, then POSTs each one. This server answers exactly that and records
what it receives, so the tests can check the objects Helm really sends. It validates
nothing itself: the tests do, with the Kubernetes client's models.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

JSON = dict[str, Any]

# (group, version) -> [(plural, kind, namespaced)]: the kinds the chart may render.
API_RESOURCES: dict[tuple[str, str], list[tuple[str, str, bool]]] = {
    ("", "v1"): [
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("events", "Event", True),
    ],
    ("apps", "v1"): [("deployments", "Deployment", True)],
    ("rbac.authorization.k8s.io", "v1"): [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    ("networking.k8s.io", "v1"): [("networkpolicies", "NetworkPolicy", True)],
    ("coordination.k8s.io", "v1"): [("leases", "Lease", True)],
    ("apiextensions.k8s.io", "v1"): [
        ("customresourcedefinitions", "CustomResourceDefinition", False)
    ],
    ("admissionregistration.k8s.io", "v1"): [
        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False)
    ],
    ("cert-manager.io", "v1"): [
        ("issuers", "Issuer", True),
        ("certificates", "Certificate", True),
    ],
    ("monitoring.coreos.com", "v1"): [
        ("servicemonitors", "ServiceMonitor", True),
        ("prometheusrules", "PrometheusRule", True),
    ],
}

_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$"
)


@dataclass
class RecordingApiServer:
    """Discovery for API_RESOURCES; GET answers 404, POST records the object and echoes it."""

    created: list[JSON] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self, path: str) -> JSON | None:
        if path == "/version":
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = sorted({g for g, _ in API_RESOURCES if g})
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g) for g in groups],
            }
        for (group, version), resources in API_RESOURCES.items():
            prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
            if path == prefix:
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": [
                        {
                            "name": plural,
                            "singularName": kind.lower(),
                            "namespaced": namespaced,
                            "kind": kind,
                            "verbs": [
                                "create",
                                "delete",
                                "get",
                                "list",
                                "patch",
                                "update",
                                "watch",
                            ],
                        }
                        for plural, kind, namespaced in resources
                    ],
                }
        return None

    @staticmethod
    def _group(group: str) -> JSON:
        versions = [
            {"groupVersion": f"{group}/{v}", "version": v} for g, v in API_RESOURCES if g == group
        ]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def record(self, path: str, body: JSON) -> JSON:
        match = _PATH.match(path)
        namespace = match.group("namespace") if match else None
        meta = body.setdefault("metadata", {})
        if namespace:
            meta.setdefault("namespace", namespace)
        with self._lock:
            self.created.append(json.loads(json.dumps(body)))
            echoed = json.loads(json.dumps(body))
        echoed["metadata"].update(
            uid=str(uuid.uuid4()), resourceVersion="1", creationTimestamp="2025-01-01T00:00:00Z"
        )
        return echoed

    def objects(self, kind: str | None = None) -> list[JSON]:
        with self._lock:
            return [o for o in self.created if kind is None or o.get("kind") == kind]


def _handler(server: RecordingApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: JSON) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            self._send(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                    "message": f"{self.path} not found",
                },
            )

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            doc = server.discovery(path)
            match = _PATH.match(path)
            if doc is not None:
                self._send(200, doc)
            elif match and not match.group("name"):
                # A list (Helm looks up earlier releases by label): nothing stored.
                self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []})
            else:
                self._not_found()

        def do_POST(self) -> None:
            self._send(201, self._receive())

        def do_PUT(self) -> None:
            self._send(200, self._receive())

        def _receive(self) -> JSON:
            path = self.path.split("?")[0]
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Type", "").startswith("application/json"):
                return server.record(path, json.loads(data))
            # Helm's release record (a Secret, sent as protobuf): stored nowhere, echoed bare.
            match = _PATH.match(path)
            name = (match.group("name") if match else None) or "release"
            return {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name}}

    return Handler


@contextmanager
def serve(kubeconfig: Path) -> Iterator[RecordingApiServer]:
    """Run the server on a free loopback port and write a kubeconfig that points at it."""
    state = RecordingApiServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": url}}],
                "users": [{"name": "test", "user": {"token": "test"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
