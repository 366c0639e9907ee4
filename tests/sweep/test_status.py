"""The Sweep status stays small and deterministic: counts by phase and backend, the top five,
never a list of trials — far below 100 KiB at 20,000 trials."""

from __future__ import annotations

import json
import random

from rlops.api import Backend, Phase, SweepSpec, SweepStatus
from rlops.sweep import TrialState, plan
from tests.builders import sweep
from tests.sweep.simulation import spec_of

PHASES = [Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED]


def big_sweep() -> SweepSpec:
    builder = sweep().set("spec.algorithm", "random").set("spec.maxTrials", 10_000)
    builder.param("config.training.lr", "loguniform", low=1e-5, high=1e-2)
    builder.param("config.training.gamma", "uniform", low=0.9, high=0.999)
    builder.param("config.rl_module.model_config", "choice", values=[{"fcnet_hiddens": [256] * 4}])
    builder.set("spec.seedsPerTrial", 2).set("spec.parallelism", 500)
    return spec_of(builder)


def observed(spec: SweepSpec, n: int) -> list[TrialState]:
    rng = random.Random(n)
    out = []
    for k in range(n):
        index, seed_index = divmod(k, 2)
        phase = rng.choice(PHASES)
        out.append(
            TrialState(
                name=f"a-sweep-with-a-long-name-{index}-s{seed_index}",
                index=index,
                seed_index=seed_index,
                parameters={
                    "config.training.lr": rng.random(),
                    "config.training.gamma": rng.random(),
                    "config.rl_module.model_config": {"fcnet_hiddens": [256] * 4},
                },
                phase=phase,
                backend=rng.choice(list(Backend)),
                objective=rng.uniform(0, 500) if phase == Phase.SUCCEEDED else None,
                history=tuple((i, rng.random()) for i in range(1, 4)),
            )
        )
    return out


def size(status: SweepStatus) -> int:
    return len(json.dumps(status.dump()).encode())


def test_status_under_100_kib_at_20000_trials_and_independent_of_their_number() -> None:
    spec = big_sweep()
    large = plan(spec, "a-sweep-with-a-long-name", observed(spec, 20_000), generation=7).status
    small = plan(spec, "a-sweep-with-a-long-name", observed(spec, 200), generation=7).status
    assert large.trials.total == 20_000
    assert size(large) < 100 * 1024
    assert size(large) < size(small) + 100  # only the digits of the counts grow
    assert len(large.top) == 5


def test_counts_by_phase_and_backend_add_up() -> None:
    spec = big_sweep().model_copy(update={"parallelism": 1})
    trials = observed(spec, 1000)
    status = plan(spec, "s", trials).status
    c = status.trials
    assert c.total == 1000 == c.pending + c.running + c.succeeded + c.failed + c.stopped
    assert sum(status.backends.values()) == 1000
    assert status.backends["slurm"] == sum(1 for t in trials if t.backend == Backend.SLURM)


def test_status_is_deterministic() -> None:
    spec = big_sweep()
    trials = observed(spec, 2000)
    first = plan(spec, "s", trials, generation=2).status
    assert plan(spec, "s", list(reversed(trials)), generation=2).status == first
