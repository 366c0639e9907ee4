"""Where each trial runs: the sweep's backend, or Kubernetes first and SLURM after (burst)."""

from __future__ import annotations

from collections.abc import Sequence

from rlops.api import Backend, PlacementSpec, SweepBackend, SweepSpec
from rlops.sweep.trials import ACTIVE_PHASES, WAITING_PHASES, TrialState

# Sweep-only settings that mean nothing to a single experiment.
SWEEP_ONLY = {"kubernetes": ("maxParallel",), "slurm": ()}


def is_burst(spec: SweepSpec) -> bool:
    return spec.placement.backend == SweepBackend.BURST


def fixed_backend(spec: SweepSpec) -> Backend:
    """The backend of every trial of a sweep that does not burst."""
    if spec.placement.backend is None or is_burst(spec):
        return spec.template.placement.backend
    return Backend(spec.placement.backend.value)


class BurstPlacer:
    """Sends a new trial to Kubernetes while fewer than maxParallel of the sweep's unfinished
    trials are there, and to SLURM otherwise."""

    def __init__(self, spec: SweepSpec, trials: Sequence[TrialState]) -> None:
        k8s = spec.placement.kubernetes
        self.limit = k8s.max_parallel if k8s is not None and k8s.max_parallel is not None else 0
        self.on_kubernetes = sum(
            1 for t in trials if t.backend == Backend.KUBERNETES and t.phase in ACTIVE_PHASES
        )

    def next(self) -> Backend:
        if self.on_kubernetes < self.limit:
            self.on_kubernetes += 1
            return Backend.KUBERNETES
        return Backend.SLURM


def burst_moves(spec: SweepSpec, trials: Sequence[TrialState]) -> list[tuple[str, Backend]]:
    """Trials that waited on Kubernetes longer than burstAfterSeconds: re-place them on SLURM.

    A trial resumed after a pause (promotions > 0) stays where its checkpoint is.
    """
    after = spec.placement.burst_after_seconds
    if not is_burst(spec) or after is None:
        return []
    return [
        (t.name, Backend.SLURM)
        for t in trials
        if t.backend == Backend.KUBERNETES
        and t.phase in WAITING_PHASES
        and not t.stop_requested
        and not t.promotions
        and t.waiting_seconds > after
    ]


def trial_placement(spec: SweepSpec, base: PlacementSpec, backend: Backend) -> PlacementSpec:
    """`base` (the trial's placement) on `backend`, with the sweep's settings merged over it.

    Fields the Sweep sets in `placement.kubernetes` / `placement.slurm` win over the
    template's; fields it leaves unset keep the template's values.
    """
    manifest = base.dump()
    manifest["backend"] = backend.value
    for section in ("kubernetes", "slurm"):
        overlay = getattr(spec.placement, section)
        if overlay is None:
            continue
        settings = overlay.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for key in SWEEP_ONLY[section]:
            settings.pop(key, None)
        current = manifest.get(section)
        manifest[section] = {**(current if isinstance(current, dict) else {}), **settings}
    return PlacementSpec.model_validate(manifest)
