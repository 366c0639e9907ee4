"""A Kubernetes API server emulator over HTTP, for tests (kubectl, kopf and the Python client).

`Emulator(crd_files).start()` serves on 127.0.0.1 on a free port from a
thread of its own, so blocking clients in the test (the official client,
kubectl in a subprocess) and asyncio ones (kopf) both work. The semantics
live in `store.py`; this module maps HTTP onto them: URL parsing,
content types, watch streams, Table responses, discovery and OpenAPI.

Run it by hand: `python -m tests.kube.apiserver --port 8001 crds/*.yaml`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.kube import discovery
from tests.kube.admission import Webhooks
from tests.kube.patch import PatchError, json_patch, merge_patch
from tests.kube.policies import Policies, Request
from tests.kube.rbac import Attributes, Authorizer, User, request_verb
from tests.kube.resources import KOPF_PEERING_CRDS, ResourceType, load_crds
from tests.kube.selectors import SelectorError, field_selector, label_selector, page
from tests.kube.store import (
    ApiError,
    Obj,
    Store,
    WriteOptions,
    bad_request,
    install_crd,
    unknown_group_resource,
)
from tests.kube.tables import table

_JSON = "application/json"


def _respond(body: Any, status: int = 200, warnings: Iterable[str] = ()) -> web.Response:
    response = web.Response(body=json.dumps(body).encode(), status=status, content_type=_JSON)
    for warning in warnings:
        response.headers.add("Warning", f"299 - {json.dumps(warning)}")
    return response


def _error(exc: ApiError) -> web.Response:
    return _respond(exc.status(), exc.code)


USER = web.RequestKey("user", User)


class ApiServer:
    """The aiohttp application over one `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.webhooks = Webhooks(store)
        self.policies = Policies(store)
        self.address = "127.0.0.1"
        self._openapi_cache: dict[tuple[str, int], bytes] = {}
        self.auth = Authorizer(store)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.app.on_shutdown.append(self._close_watches)

    async def _close_watches(self, _: web.Application) -> None:
        self.store.close_all_watches()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            request[USER] = self.auth.authenticate(request.headers.get("Authorization"))
            return await self._route(request)
        except ApiError as exc:
            return _error(exc)
        except (SelectorError, PatchError) as exc:
            return _error(bad_request(str(exc)))

    # -- routing -----------------------------------------------------------------
    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        served = self.store.group_versions()
        if request.method == "GET":
            static = self._static(parts, served)
            if static is not None:
                return static
        if len(parts) >= 3 and parts[0] == "api":
            return await self._resource(request, "", parts[1], parts[2:])
        if len(parts) >= 4 and parts[0] == "apis":
            return await self._resource(request, parts[1], parts[2], parts[3:])
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({request.path})"
        )

    def _static(
        self, parts: list[str], served: dict[str, list[ResourceType]]
    ) -> web.StreamResponse | None:
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if parts == ["version"]:
            return _respond(discovery.VERSION)
        if parts == ["api"]:
            return _respond(discovery.api_versions(self.address))
        if parts == ["apis"]:
            return _respond(discovery.api_group_list(served))
        if len(parts) == 2 and parts[0] == "api" and parts[1] in served:
            return _respond(discovery.api_resource_list(parts[1], served[parts[1]]))
        if len(parts) == 2 and parts[0] == "apis":
            versions = [gv.split("/")[1] for gv in served if gv.startswith(f"{parts[1]}/")]
            if versions:
                return _respond(discovery.api_group(parts[1], versions))
        if len(parts) == 3 and parts[0] == "apis" and f"{parts[1]}/{parts[2]}" in served:
            gv = f"{parts[1]}/{parts[2]}"
            return _respond(discovery.api_resource_list(gv, served[gv]))
        if parts == ["openapi", "v3"]:
            return _respond(discovery.openapi_root(served))
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            gv = "/".join(parts[3:]) if parts[2] == "apis" else parts[3]
            if gv in served:
                key = (gv, self.store.rv if gv == "apiextensions.k8s.io/v1" else len(served[gv]))
                if key not in self._openapi_cache:
                    self._openapi_cache[key] = discovery.openapi_group_version(gv, served[gv])
                return web.Response(body=self._openapi_cache[key], content_type=_JSON)
        return None

    async def _resource(
        self, request: web.Request, group: str, version: str, segments: list[str]
    ) -> web.StreamResponse:
        namespace: str | None = None
        if len(segments) >= 3 and segments[0] == "namespaces":
            inner = self.store.lookup(group, version, segments[2])
            if inner is not None and inner.namespaced:
                namespace, segments = segments[1], segments[2:]
        rt = self.store.lookup(group, version, segments[0])
        if rt is None or len(segments) > 3:
            raise unknown_group_resource(group, version, segments[0])
        name = segments[1] if len(segments) > 1 else None
        subresource = segments[2] if len(segments) > 2 else None
        method = request.method
        watch = request.query.get("watch") in ("1", "true")
        asked = Attributes(
            request_verb(method, name is not None, watch), group,
            rt.plural + (f"/{subresource}" if subresource else ""), namespace, name,
        )  # fmt: skip
        self.auth.authorize(request[USER], asked)
        if rt.plural == "serviceaccounts" and subresource == "token" and method == "POST":
            return _respond(self._token_request(namespace or "", name or ""), 201)
        if subresource is not None and not (subresource == "status" and rt.status_subresource):
            raise unknown_group_resource(group, version, "/".join(segments))
        if rt.namespaced and name is not None and namespace is None:
            raise unknown_group_resource(group, version, "/".join(segments))
        if not rt.namespaced and namespace is not None:
            raise unknown_group_resource(group, version, segments[0])
        if method == "GET" and name is None:
            if watch:
                return await self._watch(request, rt, namespace)
            return self._list(request, rt, namespace)
        if method == "GET":
            obj = self.store.get(rt, namespace, name or "")
            return (
                self._maybe_table(request, rt, [obj], obj) if subresource is None else _respond(obj)
            )
        if method == "POST" and name is None:
            options = self._write_options(request)
            body = await self._body(request)
            name = ((body or {}).get("metadata") or {}).get("name") or ""
            created = await self._admitted(
                Request(rt, "CREATE", None, namespace, name, request[USER]),
                None,
                options,
                lambda o: self.store.create(rt, namespace, body, o),
            )
            return _respond(created, 201, options.warnings)
        if method == "PUT" and name is not None:
            options = self._write_options(request)
            body = await self._body(request)
            updated = await self._admitted(
                Request(rt, "UPDATE", subresource, namespace, name, request[USER]),
                self.store.get(rt, namespace, name),
                options,
                lambda o: self.store.update(rt, namespace, name, body, subresource, o),
            )
            return _respond(updated, 200, options.warnings)
        if method == "PATCH" and name is not None:
            return await self._patch(request, rt, namespace, name, subresource)
        if method == "DELETE":
            options = await self._body(request) if request.can_read_body else {}
            if name is not None:
                return _respond(self._delete(request, options, rt, namespace, name))
            items = self.store.list_objects(rt, namespace, self._predicate(request))
            deleted = [
                self._delete(request, options, rt, namespace, o["metadata"]["name"]) for o in items
            ]
            return _respond(
                {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "items": deleted}
            )
        raise ApiError(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource ({method})",
        )

    # -- verbs ---------------------------------------------------------------------
    def _token_request(self, namespace: str, name: str) -> dict[str, Any]:
        """`kubectl create token`: a token for the service account (see tests/kube/rbac.py)."""
        token = self.auth.mint(namespace, name)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            "status": {"token": token, "expirationTimestamp": expires},
        }

    def _predicate(self, request: web.Request) -> Any:
        labels = label_selector(request.query.get("labelSelector"))
        fields = field_selector(request.query.get("fieldSelector"))
        return lambda obj: labels(obj) and fields(obj)

    def _list(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}

        def window(items: list[Any]) -> list[Any]:
            shown, meta["continue"] = page(items, request.query.get("limit"),
                                           request.query.get("continue"))  # fmt: skip
            return shown

        items = self.store.list_objects(rt, namespace, self._predicate(request), window)
        listing = {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta,
                   "items": items}  # fmt: skip
        return self._maybe_table(request, rt, items, listing)

    def _maybe_table(
        self, request: web.Request, rt: ResourceType, items: list[Obj], plain: Obj
    ) -> web.StreamResponse:
        """A Table when the client's first choice is one (kubectl get), else the plain object."""
        if "as=Table" in request.headers.get("Accept", "").split(",")[0]:
            include = request.query.get("includeObject", "Metadata")
            return _respond(table(rt, items, str(self.store.rv), include))
        return _respond(plain)

    async def _watch(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _JSON})
        await response.prepare(request)
        try:
            watch = self.store.watch(
                rt, namespace, self._predicate(request), request.query.get("resourceVersion")
            )
        except ApiError as exc:
            await response.write(
                json.dumps({"type": "ERROR", "object": exc.status()}).encode() + b"\n"
            )
            return response
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    event = await asyncio.wait_for(watch.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                line = json.dumps({"type": event.type, "object": event.obj}).encode() + b"\n"
                await response.write(line)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.close_watch(watch)
        return response

    async def _admitted(
        self,
        asked: Request,
        old: Obj | None,
        options: WriteOptions,
        write: Callable[[WriteOptions], Obj],
    ) -> Obj:
        """`write`, after the validating admission policies (policies.py) and then the
        validating webhooks that select it allowed its dry run (webhooks: not on status)."""
        rt, operation = asked.rt, asked.operation
        webhooks = self.webhooks.selected(rt, operation, None) if not asked.subresource else []
        policies = self.policies.selected(asked)
        if webhooks or policies:
            candidate = write(dataclasses.replace(options, dry_run=True, warnings=[]))
            name = candidate.get("metadata", {}).get("name", asked.name)
            asked = dataclasses.replace(asked, name=name, dry_run=options.dry_run)
            self.policies.check(asked, policies, candidate, old, options.warnings)
            await self.webhooks.review(
                rt, operation, candidate, old, options.dry_run, webhooks, options.warnings
            )
        return write(options)

    def _write_options(self, request: web.Request) -> WriteOptions:
        validation = request.query.get("fieldValidation", "Warn")
        if validation not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                f"fieldValidation {validation!r} is not supported; allowed: Strict, Warn, Ignore"
            )
        return WriteOptions(
            field_validation=validation, dry_run=request.query.get("dryRun") == "All"
        )

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            if request.content_type in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(raw)
            return json.loads(raw or b"{}")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None

    async def _patch(
        self,
        request: web.Request,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str | None,
    ) -> web.StreamResponse:
        kind = request.content_type
        accepted = ["application/json-patch+json", "application/merge-patch+json"]
        if not rt.custom:
            accepted.append("application/strategic-merge-patch+json")
        if kind not in accepted:
            message = (
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(accepted)
            )
            raise ApiError(415, "UnsupportedMediaType", message)
        options = self._write_options(request)
        patch = await self._body(request)
        current = self.store.get(rt, namespace, name)
        patched = (
            json_patch(current, patch)
            if kind == "application/json-patch+json"
            else merge_patch(current, patch)
        )
        if not isinstance(patched, dict):
            raise bad_request("the patch did not produce an object")
        updated = await self._admitted(
            Request(rt, "UPDATE", subresource, namespace, name, request[USER]),
            current,
            options,
            lambda o: self.store.update(
                rt, namespace, name, patched, subresource, o, require_resource_version=False
            ),
        )
        return _respond(updated, 200, options.warnings)

    def _delete(
        self, request: web.Request, options: Obj, rt: ResourceType, namespace: str | None, name: str
    ) -> Obj:
        propagation = (
            request.query.get("propagationPolicy")
            or options.get("propagationPolicy")
            or "Background"
        )
        dry_run = request.query.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        asked = Request(rt, "DELETE", None, namespace, name, request[USER], dry_run)
        if policies := self.policies.selected(asked):  # their warnings are not reported
            self.policies.check(asked, policies, None, self.store.get(rt, namespace, name), [])
        return self.store.delete(
            rt, namespace, name, propagation, options.get("preconditions"), dry_run
        )


class Emulator:
    """The API server emulator in a background thread with its own event loop."""

    def __init__(self, crd_files: Iterable[Path] = (), *, kopf_peering: bool = True) -> None:
        self.crds = load_crds(crd_files) + (list(KOPF_PEERING_CRDS) if kopf_peering else [])
        self.port = 0
        self.store: Store | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Emulator:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the API server emulator did not start")
        if self._error is not None:
            raise RuntimeError("the API server emulator failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self) -> None:
        self.store = Store()
        for crd in self.crds:
            install_crd(self.store, crd)
        server = ApiServer(self.store)
        self._runner = web.AppRunner(server.app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        server.address = f"127.0.0.1:{self.port}"

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig for kubectl and the clients: plain HTTP, a token the emulator ignores."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }
        path.write_text(yaml.safe_dump(config))
        return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Kubernetes API emulator.")
    parser.add_argument(
        "crds", nargs="*", type=Path, help="YAML files with CustomResourceDefinitions"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, default=Path("emulator.kubeconfig"))
    args = parser.parse_args()
    emulator = Emulator(args.crds)
    emulator.port = args.port
    emulator.start()
    emulator.write_kubeconfig(args.kubeconfig)
    print(f"serving {emulator.url}; KUBECONFIG={args.kubeconfig.resolve()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    emulator.stop()


if __name__ == "__main__":
    main()
