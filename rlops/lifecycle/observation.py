"""What a backend saw of one experiment's work, normalised for the lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from rlops.api.experiment import Phase


@dataclass(frozen=True)
class Observation:
    """One experiment's work as its backend reports it.

    `phase` is what the work says of the experiment (a SLURM job SLURM forgot arrives as
    the phase its result.json gives, Failed without one); `terminal`: the backend's object
    has finished and holds no resources; `lingers`: the object stays until it is deleted
    and blocks the next run of the same name (a RayJob), where a SLURM job simply ends;
    `ending`: its deletion is under way. `waited`: seconds the work waited in the
    backend's queue before it started (once it has); `recheck_after`: seconds after which
    the observation changes without any event (a deadline), for event-driven drivers;
    `exit_code`: the exit status of the runtime's process, where the work has one;
    `paused_at`: the iteration at which the run said it ended itself at its pause point,
    where the backend relays the runtime's last words (a failed Ray job's message).
    """

    phase: Phase
    message: str
    reason: str = ""
    retries: int = 0  # attempts the backend itself restarted (KubeRay backoffLimit, requeues)
    started_at: str | None = None
    completed_at: str | None = None
    terminal: bool = False
    attempt: int = 1  # the attempt the work runs (a RayJob's label, a SLURM job's comment)
    name: str = "its run"  # how messages name the work: "RayJob cp", "job 12"
    lingers: bool = False
    ending: bool = False
    waited: float | None = None
    recheck_after: float | None = None
    exit_code: int | None = None
    paused_at: int | None = None

    @property
    def blocks(self) -> bool:
        """The work still runs, or its object must go before the next run."""
        return not self.terminal or self.lingers
