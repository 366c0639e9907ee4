"""A driver in miniature for the engine tests: carries plans out and lets trials progress.

Outcomes come from a seeded `random.Random` (or from a test's own function), so each
test states what happens to its trials; the engine under test is the real one.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rlops.api import Backend, Phase, Sweep, SweepSpec
from rlops.sweep import Plan, TrialState, plan
from tests.builders import SweepBuilder

Objective = Callable[[dict[str, Any], int], float]


def spec_of(builder: SweepBuilder) -> SweepSpec:
    return Sweep.model_validate(builder.obj()).spec


@dataclass
class Simulation:
    """Trials as a driver would observe them, advanced one round at a time."""

    spec: SweepSpec
    name: str = "sw"
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    fail_rate: float = 0.0
    objective: Objective = lambda parameters, seed: 0.0
    trials: dict[str, TrialState] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)

    def observe(self) -> list[TrialState]:
        return list(self.trials.values())

    def plan(self) -> Plan:
        result = plan(self.spec, self.name, self.observe(), generation=1)
        self.plans.append(result)
        return result

    def apply(self, p: Plan) -> None:
        for new in p.create:
            assert new.name not in self.trials, f"{new.name} created twice"
            self.created.append(new.name)
            self.trials[new.name] = TrialState(
                name=new.name,
                index=new.index,
                seed_index=new.seed_index,
                parameters=new.parameters,
                phase=Phase.PENDING,
                backend=new.backend,
            )
        for name in p.retry:
            t = self.trials[name]
            assert t.phase == Phase.FAILED, f"{name} retried while {t.phase}"
            self.retried.append(name)
            self._set(name, phase=Phase.PENDING, attempts=t.attempts + 1, history=())
        for name in p.stop:
            self.stopped.append(name)
            self._set(name, stop_requested=True)
            if self.trials[name].phase == Phase.PAUSED:  # nothing runs: Stopped at once
                self._set(name, phase=Phase.STOPPED)
        for name in p.pause:
            assert self.trials[name].phase == Phase.RUNNING, f"{name} paused while not Running"
            self.paused.append(name)
            self._set(name, pause_requested=True)
        exploits = {e.name: e.exploit for e in p.exploit}
        for name in p.resume:
            t = self.trials[name]
            assert t.phase == Phase.PAUSED, f"{name} resumed while {t.phase}"
            self.resumed.append(name)
            self._set(name, phase=Phase.PENDING, pause_requested=False, promotions=t.promotions + 1)
            if name in exploits:  # pbt: the driver records it; its parameters are the trial's
                e = exploits[name]
                self._set(name, parameters=e.parameters, exploits=(*t.exploits, e))
        for name, backend in p.move:
            self._set(name, backend=backend, waiting_seconds=0.0)

    def advance(self) -> None:
        """One tick of the world: trials start, report, and end."""
        for t in list(self.trials.values()):
            if t.phase in (Phase.PENDING, Phase.SUBMITTED):
                if t.stop_requested:
                    self._set(t.name, phase=Phase.STOPPED)
                elif self.rng.random() < 0.7:
                    self._set(t.name, phase=Phase.RUNNING)
            elif t.phase == Phase.RUNNING:
                self._progress(t)

    def _progress(self, t: TrialState) -> None:
        if t.stop_requested:
            self._set(t.name, phase=Phase.STOPPED)
            return
        if t.pause_requested:  # it checkpoints and ends; its history stays
            self._set(t.name, phase=Phase.PAUSED)
            return
        value = self.objective(dict(t.parameters), t.seed_index)
        iteration = len(t.history) + 1
        history = (*t.history, (iteration, value))
        roll = self.rng.random()
        if roll < self.fail_rate:
            self._set(t.name, phase=Phase.FAILED, history=history)
        elif roll < self.fail_rate + 0.3:
            self._set(t.name, phase=Phase.SUCCEEDED, objective=value, history=history)
        else:
            self._set(t.name, history=history)

    def step(self) -> Plan:
        p = self.plan()
        self.apply(p)
        self.advance()
        return p

    def run(self, rounds: int = 500) -> Plan:
        """Plan, apply and advance until the sweep is done (or `rounds` pass)."""
        for _ in range(rounds):
            p = self.plan()
            self.apply(p)
            if p.done:
                return p
            self.advance()
        raise AssertionError(f"not done after {rounds} rounds: {p.status.message}")

    def _set(self, name: str, **changes: Any) -> None:
        self.trials[name] = dataclasses.replace(self.trials[name], **changes)


def finished(
    name: str, index: int, phase: Phase, objective: float | None = None, **kw: Any
) -> TrialState:
    """A trial in a given state, for tests that build the observed world by hand."""
    return TrialState(
        name=name,
        index=index,
        seed_index=kw.pop("seed_index", 0),
        parameters=kw.pop("parameters", {}),
        phase=phase,
        backend=kw.pop("backend", Backend.LOCAL),
        objective=objective,
        **kw,
    )
