"""What the controller reads and remembers: kopf's indexes of the objects it watches, and
the status it last wrote to each object until the index shows it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rlops.operator.packed import unpacked, unpacked_all
from rlops.operator.progress import Key

Body = Mapping[str, Any]


class Lookup(Protocol):
    """Read access to an index: the one object under a key, or None."""

    def __call__(self, key: Key) -> Body | None: ...


def first(values: Iterable[Any] | None) -> Body | None:
    """The one entry under a key, decoded (index entries are kept `Packed`)."""
    found = next(iter(values), None) if values is not None else None
    return unpacked(found) if found is not None else None


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Sent:
    """The status this operator last wrote to an object, until the index shows it."""

    status: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # the resourceVersion our last write produced
    older: set[str] = field(default_factory=set)  # versions known to precede it


def before(version: str | None, written: str | None) -> bool:
    try:
        return int(version or "") < int(written or "")
    except ValueError:
        return False


class Indexes:
    """The kopf indexes the controller reads, bound by the handlers when they run."""

    def __init__(self) -> None:
        self.experiments: Mapping[Key, Iterable[Any]] = {}
        self.rayjobs: Mapping[Key, Iterable[Any]] = {}
        self.sweeps: Mapping[Key, Iterable[Any]] = {}
        self.trials: Mapping[Key, Iterable[Any]] = {}

    def bind(self, **indexes: Any) -> None:
        for name in ("experiments", "rayjobs", "sweeps", "trials"):
            if name in indexes:
                setattr(self, name, indexes[name])

    def experiment(self, key: Key) -> Body | None:
        return first(self.experiments.get(key))

    def rayjob(self, key: Key) -> Body | None:
        return first(self.rayjobs.get(key))

    def sweep(self, key: Key) -> Body | None:
        return first(self.sweeps.get(key))

    def children(self, key: Key) -> list[Body]:
        """A sweep's trials as the trials index shows them, decoded."""
        return unpacked_all(self.trials.get(key))


class Creations:
    """The children each sweep's plans created, until the trials index shows them.

    The index lags behind creates (a big fan-out by seconds): a plan made meanwhile counts
    these as the Pending trials they are, instead of planning (and creating) them again.
    One the index never shows (deleted at once) is forgotten after `ttl` seconds.
    """

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.made: dict[Key, dict[str, tuple[Body, float]]] = {}

    def remember(self, sweep: Key, manifest: Body) -> None:
        name = manifest["metadata"]["name"]
        self.made.setdefault(sweep, {})[name] = (manifest, self.clock())

    def unseen(self, sweep: Key, children: Iterable[Body]) -> list[Body]:
        """The created children missing from `children` (the index's), as their manifests."""
        made = self.made.get(sweep)
        if not made:
            return []
        shown = {(c.get("metadata") or {}).get("name") for c in children}
        expired = self.clock() - self.ttl
        for name, (_, when) in list(made.items()):
            if name in shown or when < expired:
                del made[name]
        if not made:
            del self.made[sweep]
        return [manifest for manifest, _ in made.values()]

    def forget(self, sweep: Key) -> None:
        self.made.pop(sweep, None)
