"""What a driver tells the engine about trials, and what the engine asks of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlops.api import Backend, Exploit, Phase, RLExperimentSpec, SweepSpec, SweepStatus

ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.SUBMITTED, Phase.RUNNING})
WAITING_PHASES = frozenset({Phase.PENDING, Phase.SUBMITTED})

LABEL_SWEEP = "rlops.dev/sweep"
LABEL_TRIAL = "rlops.dev/trial"
LABEL_SEED = "rlops.dev/seed"


@dataclass(frozen=True)
class TrialState:
    """What a driver observed of one trial run (one seed of one configuration)."""

    name: str
    index: int
    seed_index: int
    parameters: Mapping[str, Any]
    phase: Phase
    backend: Backend | None = None
    attempts: int = 1
    objective: float | None = None
    history: tuple[tuple[int, float], ...] = ()
    waiting_seconds: float = 0.0
    stop_requested: bool = False
    pause_requested: bool = False  # asked to pause and not resumed since (Running or Paused)
    promotions: int = 0  # resumes granted after pauses (ASHA's promotion variant)
    exploits: tuple[Exploit, ...] = ()  # pbt: its exploits, oldest first (`parameters` is after)

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES


@dataclass(frozen=True)
class TrialPlan:
    """A trial to create: its name, parameters, seed, placement and complete spec."""

    name: str
    index: int
    seed_index: int
    seed: int
    parameters: dict[str, Any]
    spec: RLExperimentSpec
    backend: Backend
    labels: dict[str, str]


@dataclass(frozen=True)
class ExploitPlan:
    """pbt: a Paused trial to resume from another trial's checkpoint with new parameters.

    The driver records `exploit` (and its parameters as the trial's), replaces the trial's
    spec with `spec` (the parameters applied, `checkpoint.exploit` naming the source run),
    and resumes the trial; the runtime copies the checkpoint in before it trains.
    """

    name: str
    exploit: Exploit
    spec: RLExperimentSpec


@dataclass(frozen=True)
class Plan:
    """Everything a driver has to do after one look at a sweep's trials.

    - create: new trials; retry: Failed trials to run again as their next attempt.
    - stop: trials to end for good (Stopped). A Paused trial listed here becomes Stopped
      without running again.
    - pause: Running trials to end with a checkpoint as Paused (not finished), keeping
      their promotions count; resume: Paused trials to run again from their checkpoint,
      same attempt, with promotions + 1. A resumed trial is active again (Pending) and
      counts against parallelism.
    - exploit (pbt): trials of `resume` that continue from another trial's checkpoint.
    """

    create: list[TrialPlan]
    retry: list[str]
    stop: list[str]
    move: list[tuple[str, Backend]]
    status: SweepStatus
    done: bool
    pause: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    exploit: list[ExploitPlan] = field(default_factory=list)


def trial_name(sweep_name: str, index: int, seed_index: int, seeds_per_trial: int) -> str:
    """The deterministic name of a trial: `<sweep>-<index>`, `-s<seed>` with several seeds."""
    if seeds_per_trial > 1:
        return f"{sweep_name}-{index}-s{seed_index}"
    return f"{sweep_name}-{index}"


def trial_labels(sweep_name: str, index: int, seed_index: int) -> dict[str, str]:
    return {LABEL_SWEEP: sweep_name, LABEL_TRIAL: str(index), LABEL_SEED: str(seed_index)}


def trial_seed(spec: SweepSpec, seed_index: int) -> int:
    """The training seed of a configuration's `seed_index`-th run.

    Every configuration uses the same seeds (common random numbers), so configurations
    are compared on equal terms: the template's seed (or else the sweep's) plus the
    seed index.
    """
    base = spec.template.seed if spec.template.seed is not None else spec.seed
    return base + seed_index
