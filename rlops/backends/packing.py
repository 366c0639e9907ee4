"""Packing trials onto this machine's CPUs and GPUs.

A trial asks for `resources.total_cpus()` CPUs and `resources.total_gpus()` GPUs. CPUs
are a pool; GPUs are devices of capacity 1, and a fractional request shares a device
with other fractional requests (best fit: the fullest device that still has room), so
four trials of 0.25 GPU train side by side on one card. A whole-GPU request takes that
many free devices. A trial asking for more CPUs than the machine has runs alone rather
than never.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rlops.api import ResourcesSpec

EPSILON = 1e-9


class PackingError(ValueError):
    """A request that can never fit, whatever finishes first."""


@dataclass(frozen=True)
class Request:
    cpus: float
    gpus: float

    @classmethod
    def of(cls, resources: ResourcesSpec) -> Request:
        return cls(cpus=resources.total_cpus(), gpus=resources.total_gpus())


@dataclass(frozen=True)
class Allocation:
    """What one trial holds: CPUs and a share of each GPU device it uses."""

    cpus: float
    gpus: tuple[tuple[int, float], ...] = ()

    @property
    def devices(self) -> list[int]:
        return [device for device, _ in self.gpus]

    def cuda_visible_devices(self) -> str:
        """The CUDA_VISIBLE_DEVICES value: the devices it uses, or none at all."""
        return ",".join(str(d) for d in self.devices)

    def threads(self) -> int:
        """Threads a trial should use for math libraries (OMP, MKL, torch)."""
        return max(1, math.floor(self.cpus + EPSILON))


@dataclass
class Slots:
    """The free capacity of the machine; allocate() and release() keep it up to date."""

    cpus: float
    gpu_ids: tuple[int, ...] = ()
    free_cpus: float = field(init=False)
    free_gpus: dict[int, float] = field(init=False)

    def __post_init__(self) -> None:
        if self.cpus <= 0:
            raise PackingError(f"--cpus: {self.cpus:g} is not allowed; must be > 0")
        self.free_cpus = self.cpus
        self.free_gpus = dict.fromkeys(self.gpu_ids, 1.0)

    def check(self, request: Request, name: str) -> None:
        """Raise PackingError when `request` could not fit even on an idle machine."""
        if request.gpus > EPSILON and not self.gpu_ids:
            raise PackingError(
                f"{name}: needs {request.gpus:g} GPU(s) (resources.learners x gpusPerLearner); "
                "pass the devices to use with --gpus, e.g. --gpus 0,1"
            )
        if request.gpus > len(self.gpu_ids) + EPSILON:
            raise PackingError(
                f"{name}: needs {request.gpus:g} GPUs; --gpus gives {len(self.gpu_ids)}"
            )
        if request.gpus > 1 + EPSILON and not float(request.gpus).is_integer():
            raise PackingError(
                f"{name}: {request.gpus:g} GPUs; more than one GPU must be a whole number"
            )

    def allocate(self, request: Request) -> Allocation | None:
        """Take room for `request`, or None when it does not fit now."""
        cpus = min(request.cpus, self.cpus)  # Larger than the machine: it runs alone.
        if cpus > self.free_cpus + EPSILON:
            return None
        gpus = self._gpu_shares(request.gpus)
        if gpus is None:
            return None
        self.free_cpus -= cpus
        for device, share in gpus:
            self.free_gpus[device] -= share
        return Allocation(cpus=cpus, gpus=gpus)

    def release(self, allocation: Allocation) -> None:
        self.free_cpus = min(self.cpus, self.free_cpus + allocation.cpus)
        for device, share in allocation.gpus:
            self.free_gpus[device] = min(1.0, self.free_gpus[device] + share)

    def _gpu_shares(self, gpus: float) -> tuple[tuple[int, float], ...] | None:
        if gpus <= EPSILON:
            return ()
        if gpus <= 1 + EPSILON:
            fitting = [d for d, free in self.free_gpus.items() if free + EPSILON >= gpus]
            if not fitting:
                return None
            device = min(fitting, key=lambda d: (self.free_gpus[d], d))
            return ((device, min(gpus, 1.0)),)
        whole = [d for d, free in self.free_gpus.items() if free >= 1 - EPSILON]
        if len(whole) < round(gpus):
            return None
        return tuple((d, 1.0) for d in sorted(whole)[: round(gpus)])


def parse_gpus(text: str | None) -> tuple[int, ...]:
    """`--gpus 0,1` (or `0 1`, or empty for none) as device ids."""
    if not text:
        return ()
    ids = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        if not part.isdigit():
            raise PackingError(f"--gpus: {part!r} is not a device id; write e.g. --gpus 0,1")
        ids.append(int(part))
    if len(set(ids)) != len(ids):
        raise PackingError(f"--gpus: {text!r} names a device twice")
    return tuple(ids)
