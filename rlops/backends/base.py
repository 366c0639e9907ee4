"""The one small protocol every backend implements: submit, observe, cancel.

A backend turns an RLExperiment into work somewhere (a RayJob, a SLURM job, a
process) and reports what became of it as an `Observation` — the part of the
RLExperiment status that only the backend can know.
"""

from __future__ import annotations

from typing import Protocol

from rlops.api.experiment import BackendRef, RLExperiment
from rlops.lifecycle.observation import Observation

__all__ = ["ExperimentBackend", "Observation"]


class ExperimentBackend(Protocol):
    """Run experiments somewhere. Every method is idempotent."""

    def submit(self, experiment: RLExperiment, attempt: int) -> BackendRef:
        """Start `attempt` of the experiment; submitting twice starts it once."""
        ...

    def observe(self, experiment: RLExperiment) -> Observation | None:
        """What became of the experiment's work; None when there is none."""
        ...

    def cancel(self, experiment: RLExperiment) -> None:
        """Stop the experiment's work and release its resources; no work is fine."""
        ...
