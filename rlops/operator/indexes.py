"""What the controller reads and remembers: kopf's indexes of the objects it watches, and
the status it last wrote to each object until the index shows it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rlops.operator.progress import Key

Body = Mapping[str, Any]


class Lookup(Protocol):
    """Read access to an index: the one object under a key, or None."""

    def __call__(self, key: Key) -> Body | None: ...


def first(values: Iterable[Body] | None) -> Body | None:
    return next(iter(values), None) if values is not None else None


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
        self.experiments: Mapping[Key, Iterable[Body]] = {}
        self.rayjobs: Mapping[Key, Iterable[Body]] = {}
        self.sweeps: Mapping[Key, Iterable[Body]] = {}
        self.trials: Mapping[Key, Iterable[Body]] = {}

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
