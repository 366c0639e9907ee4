"""The emulator's object store: the API server's semantics, without HTTP.

What it keeps of the real thing: uid, creationTimestamp, one global
resourceVersion counter and 409 on a stale one, generation bumped on changes
outside metadata (and status, where status is a subresource), the status
subresource's isolation, schema pruning/defaulting/validation of CRs,
finalizers holding deletion, ownerReference garbage collection (background or
orphan), namespace termination, CRDs registered when created, and a bounded
history of events for watches (410 Gone past it). All calls happen on one
event loop thread, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.kube import podsecurity, quota
from tests.kube.resources import BUILTINS, ResourceType, from_crd
from tests.kube.schema import Cause
from tests.kube.volume_claims import PERSISTENT_VOLUME_CLAIM

Obj = dict[str, Any]
T = TypeVar("T")
Key = tuple[str, str]  # (group, plural)

_META_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}
_MUTABLE_META = ("labels", "annotations", "ownerReferences", "finalizers", "managedFields")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def clone(obj: T) -> T:
    """A deep copy of JSON data (several times faster than `copy.deepcopy`)."""
    copied: T = json.loads(json.dumps(obj))
    return copied


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """Like Kubernetes' `rand.String`: no vowels, no look-alikes."""
    return "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=length))


class ApiError(Exception):
    """An error the API server answers with a `Status` object."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(rt: ResourceType, name: str) -> ApiError:
    details = {"name": name, "group": rt.group, "kind": rt.plural}
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', details)


def conflict(rt: ResourceType, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    listed = "; ".join(str(c) for c in causes)
    text = str(causes[0]) if len(causes) == 1 else f"[{listed.replace('; ', ', ')}]"
    details = {
        "name": name,
        "group": rt.group,
        "kind": rt.kind,
        "causes": [c.as_dict() for c in causes],
    }
    return ApiError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: Obj


@dataclass(eq=False)
class Watch:
    """One open watch: events matching it are queued; `None` ends it."""

    key: Key
    namespace: str | None
    predicate: Callable[[Obj], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def matches(self, event: Event) -> bool:
        if event.key != self.key:
            return False
        if self.namespace and event.obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.predicate(event.obj)


@dataclass
class WriteOptions:
    """Query parameters shared by writes."""

    field_validation: str = "Warn"  # Strict | Warn | Ignore
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


class Store:
    """All objects of all kinds, with the API server's write semantics."""

    def __init__(self, history: int = 20000) -> None:
        self.types: dict[Key, ResourceType] = {}
        self.objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self.uids: dict[str, tuple[Key, str, str]] = {}
        self.rv = 0
        self.history: deque[Event] = deque(maxlen=history)
        self.watches: set[Watch] = set()
        for rt in (*BUILTINS, PERSISTENT_VOLUME_CLAIM):
            self.register(rt)
        for namespace in ("default", "kube-system", "kube-public"):
            self.create(self.type_of("", "namespaces"), None, {"metadata": {"name": namespace}})

    # -- kinds -----------------------------------------------------------------
    def register(self, rt: ResourceType) -> None:
        key = (rt.group, rt.plural)
        self.types[key] = rt
        self.objects.setdefault(key, {})

    def type_of(self, group: str, plural: str) -> ResourceType:
        return self.types[(group, plural)]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self.types.get((group, plural))
        return rt if rt is not None and rt.version == version else None

    def group_versions(self) -> dict[str, list[ResourceType]]:
        served: dict[str, list[ResourceType]] = {}
        for rt in self.types.values():
            served.setdefault(rt.api_version, []).append(rt)
        return served

    # -- reads -----------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects[(rt.group, rt.plural)].get((namespace or "", name))
        if obj is None:
            raise not_found(rt, name)
        return clone(obj)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        predicate: Callable[[Obj], bool],
        window: Callable[[list[Obj]], list[Obj]] = lambda items: items,
    ) -> list[Obj]:
        """Copies of the matching objects, sorted; `window` picks a page before copying."""
        items = [
            obj
            for (ns, _), obj in sorted(self.objects[(rt.group, rt.plural)].items())
            if (not namespace or ns == namespace) and predicate(obj)
        ]
        return [clone(obj) for obj in window(items)]

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        predicate: Callable[[Obj], bool],
        resource_version: str | None,
    ) -> Watch:
        """Open a watch: from `resource_version`, or with ADDED for all existing objects."""
        watch = Watch((rt.group, rt.plural), namespace, predicate)
        if resource_version in (None, "", "0"):
            for obj in self.list_objects(rt, namespace, predicate):
                watch.queue.put_nowait(Event(self.rv, "ADDED", watch.key, obj))
        else:
            since = int(resource_version)
            oldest = self.history[0].rv if self.history else self.rv + 1
            if len(self.history) == self.history.maxlen and since < oldest - 1:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
            for event in self.history:
                if event.rv > since and watch.matches(event):
                    watch.queue.put_nowait(event)
        self.watches.add(watch)
        return watch

    def close_watch(self, watch: Watch) -> None:
        self.watches.discard(watch)

    def close_all_watches(self) -> None:
        for watch in self.watches:
            watch.queue.put_nowait(None)
        self.watches.clear()

    # -- writes ----------------------------------------------------------------
    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Obj,
        options: WriteOptions | None = None,
    ) -> Obj:
        options = options or WriteOptions()
        obj = clone(body)
        self._check_type(rt, obj)
        meta = obj.setdefault("metadata", {})
        if namespace is not None and meta.get("namespace") not in (None, namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent "
                "on the request"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        name = meta.get("name") or ""
        if rt.namespaced:
            meta["namespace"] = namespace
            self._check_namespace_open(namespace or "")
        else:
            meta.pop("namespace", None)
        if (namespace or "", name) in self.objects[(rt.group, rt.plural)]:
            details = {"name": name, "group": rt.group, "kind": rt.plural}
            message = f'{rt.group_resource} "{name}" already exists'
            raise ApiError(409, "AlreadyExists", message, details)
        if rt.status_subresource and rt.custom:
            obj.pop("status", None)
        self._admit(rt, obj, options, name)
        self._check_admission(rt, namespace, obj, name)
        for gone in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(gone, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        if rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        if options.dry_run:
            return obj
        stored = self._commit(rt, obj, "ADDED")
        if rt.kind == "CustomResourceDefinition":
            stored = self._establish(stored)
        return clone(stored)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        subresource: str | None = None,
        options: WriteOptions | None = None,
        require_resource_version: bool = True,
    ) -> Obj:
        options = options or WriteOptions()
        old = self.get(rt, namespace, name)
        new = clone(body)
        self._check_type(rt, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        version = meta.get("resourceVersion")
        if not version and require_resource_version and rt.custom:
            cause = Cause(
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )
            raise invalid(rt, name, [cause])
        if version and version != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        if subresource == "status":
            result = clone(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            result["metadata"] = {
                **{k: v for k, v in old["metadata"].items() if k not in _MUTABLE_META},
                **{k: meta[k] for k in _MUTABLE_META if meta.get(k)},
            }
            if rt.status_subresource:
                result.pop("status", None)
                if "status" in old:
                    result["status"] = old["status"]
        self._admit(rt, result, options, name)
        deleting = bool(old["metadata"].get("deletionTimestamp"))
        added = set(result["metadata"].get("finalizers") or []) - set(
            old["metadata"].get("finalizers") or []
        )
        if deleting and added:
            cause = Cause(
                "FieldValueForbidden",
                "metadata.finalizers",
                f"Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {sorted(added)}",
            )
            raise invalid(rt, name, [cause])
        if self._spec_of(rt, result) != self._spec_of(rt, old):
            result["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if result == old or options.dry_run:
            return result
        stored = self._commit(rt, result, "MODIFIED")
        if deleting and not stored["metadata"].get("finalizers"):
            self._remove(rt, stored, "Background")
        return clone(stored)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        obj = self.get(rt, namespace, name)
        meta = obj["metadata"]
        for field_name in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(field_name)
            if wanted and wanted != meta.get(field_name):
                message = (
                    f"Precondition failed: {field_name.title()} in precondition: {wanted}, "
                    f"{field_name.title()} in object meta: {meta.get(field_name)}"
                )
                raise ApiError(409, "Conflict", message)
        if dry_run:
            return obj
        if meta.get("deletionTimestamp"):
            return obj
        if meta.get("finalizers") or rt.kind == "Namespace":
            meta["deletionTimestamp"] = now()
            meta["deletionGracePeriodSeconds"] = 0
            meta["generation"] = meta.get("generation", 1) + 1
            if rt.kind == "Namespace":
                obj["status"] = {"phase": "Terminating"}
            stored = self._commit(rt, obj, "MODIFIED")
            if rt.kind == "Namespace":
                self._terminate_namespace(name)
            return clone(stored)
        return self._remove(rt, obj, propagation)

    # -- internals -------------------------------------------------------------
    def _check_type(self, rt: ResourceType, obj: Obj) -> None:
        for field_name, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
            given = obj.setdefault(field_name, expected)
            if given != expected:
                raise bad_request(
                    f"{field_name} {given!r} does not match the resource of the request "
                    f"({rt.group_resource}, which expects {expected!r})"
                )

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self.objects[("", "namespaces")].get(("", namespace))
        if ns is None:
            raise not_found(self.type_of("", "namespaces"), namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} "
                "because it is being terminated",
            )

    def _check_admission(
        self, rt: ResourceType, namespace: str | None, obj: Obj, name: str
    ) -> None:
        """Pod Security admission of the namespace's enforced level (podsecurity.py), then
        its object-count quotas (quota.py)."""
        ns = self.objects[("", "namespaces")].get(("", namespace or ""))
        labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
        message = podsecurity.refusal(rt.kind, obj, labels)
        if message is None and rt.namespaced:
            quotas = self.objects[("", "resourcequotas")]
            here = [q for (where, _), q in quotas.items() if where == namespace]
            used = sum(1 for where, _ in self.objects[(rt.group, rt.plural)] if where == namespace)
            message = quota.refusal(rt.group_resource, here, used) if here else None
        if message is not None:
            raise ApiError(
                403, "Forbidden", f'{rt.group_resource} "{name}" is forbidden: {message}'
            )

    def _admit(self, rt: ResourceType, obj: Obj, options: WriteOptions, name: str) -> None:
        """Prune, default and validate `obj` in place, as the API server does on every write."""
        meta = obj["metadata"]
        unknown = [f"metadata.{k}" for k in meta if k not in _META_FIELDS]
        for key in unknown:
            meta.pop(key.removeprefix("metadata."))
        schema = rt.schema
        if schema is not None:
            unknown += schema.prune(obj)
        if unknown and options.field_validation == "Strict":
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {listed}"
            )
        if options.field_validation == "Warn":
            options.warnings += [f'unknown field "{u}"' for u in unknown]
        if schema is not None:
            schema.default(obj)
        causes = self._check_name(rt, name)
        if schema is not None:
            causes += schema.validate(obj)
        if causes:
            raise invalid(rt, name, causes)

    def _check_name(self, rt: ResourceType, name: str) -> list[Cause]:
        if not name:
            return [
                Cause(
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )
            ]
        pattern, what = (
            (_LABEL, "RFC 1123 label")
            if rt.kind == "Namespace"
            else (_SUBDOMAIN, "RFC 1123 subdomain")
        )
        if len(name) > 253 or not pattern.fullmatch(name):
            message = (
                f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an "
                f"alphanumeric character (regex used for validation is '{pattern.pattern}')"
            )
            return [Cause("FieldValueInvalid", "metadata.name", message)]
        return []

    @staticmethod
    def _spec_of(rt: ResourceType, obj: Obj) -> Obj:
        """What generation counts: everything but metadata (and status, when a subresource)."""
        skipped = {"metadata", "status"} if rt.status_subresource else {"metadata"}
        return {k: v for k, v in obj.items() if k not in skipped}

    def _commit(self, rt: ResourceType, obj: Obj, event_type: str) -> Obj:
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        key = (rt.group, rt.plural)
        where = (meta.get("namespace") or "", meta["name"])
        if event_type == "DELETED":
            self.objects[key].pop(where, None)
            self.uids.pop(meta["uid"], None)
        else:
            self.objects[key][where] = obj
            self.uids[meta["uid"]] = (key, *where)
        event = Event(self.rv, event_type, key, clone(obj))
        self.history.append(event)
        for watch in self.watches:
            if watch.matches(event):
                watch.queue.put_nowait(event)
        return obj

    def _remove(self, rt: ResourceType, obj: Obj, propagation: str) -> Obj:
        removed = self._commit(rt, clone(obj), "DELETED")
        uid = removed["metadata"]["uid"]
        if rt.kind == "CustomResourceDefinition":
            self._unregister(removed)
        for dep_rt, dependent in list(self._dependents(uid)):
            refs = dependent["metadata"].get("ownerReferences") or []
            if propagation == "Orphan":
                dependent["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self._commit(dep_rt, clone(dependent), "MODIFIED")
            elif not any(r.get("uid") in self.uids for r in refs):
                meta = dependent["metadata"]
                if (meta.get("namespace") or "", meta["name"]) in self.objects[
                    (dep_rt.group, dep_rt.plural)
                ]:
                    self.delete(dep_rt, meta.get("namespace"), meta["name"], "Background")
        namespace = removed["metadata"].get("namespace")
        if namespace:
            self._finish_namespace_if_empty(namespace)
        return clone(removed)

    def _dependents(self, uid: str) -> Iterator[tuple[ResourceType, Obj]]:
        for key, objects in self.objects.items():
            for obj in list(objects.values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    yield self.types[key], obj

    def _terminate_namespace(self, namespace: str) -> None:
        for key, objects in self.objects.items():
            for (ns, name), _ in list(objects.items()):
                if ns == namespace and (ns, name) in objects:
                    self.delete(self.types[key], ns, name)
        self._finish_namespace_if_empty(namespace)

    def _finish_namespace_if_empty(self, namespace: str) -> None:
        ns = self.objects[("", "namespaces")].get(("", namespace))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if any(ns_ == namespace for objects in self.objects.values() for ns_, _ in objects):
            return
        self._commit(self.type_of("", "namespaces"), clone(ns), "DELETED")

    def _establish(self, crd: Obj) -> Obj:
        """Serve the CRD's kind and report it Established, as the API server does."""
        rt = from_crd(crd)
        self.register(rt)
        established = clone(crd)
        stamp = now()
        established["status"] = {
            "acceptedNames": crd["spec"]["names"],
            "storedVersions": [rt.version],
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": stamp,
                }
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }
        return self._commit(
            self.type_of("apiextensions.k8s.io", "customresourcedefinitions"),
            established,
            "MODIFIED",
        )

    def _unregister(self, crd: Obj) -> None:
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        rt = self.types.get(key)
        if rt is None:
            return
        for obj in list(self.objects[key].values()):
            self._commit(rt, clone(obj), "DELETED")
        del self.types[key]
        del self.objects[key]


def install_crd(store: Store, crd: Obj) -> Obj:
    """Create (or keep) a CRD object; its kind is then served."""
    rt = store.type_of("apiextensions.k8s.io", "customresourcedefinitions")
    name = crd["metadata"]["name"]
    try:
        return store.get(rt, None, name)
    except ApiError:
        return store.create(rt, None, crd, WriteOptions(field_validation="Ignore"))


def unknown_group_resource(group: str, version: str, plural: str) -> ApiError:
    gv = f"{group}/{version}" if group else version
    return ApiError(
        404, "NotFound", f"the server could not find the requested resource ({plural} in {gv})"
    )
