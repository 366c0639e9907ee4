"""An ASHA promotion Sweep whose trials burst to SLURM, through the bridge, on the real SLURM
cluster, with the Sweep's children in the Kubernetes test bed as the operator makes them (the
sweep's own reconcile, `rlops.operator.sweeps.reconcile_sweep`, plans the children and the
promotion patches, which the test applies where the operator would).

Covers: the bridge writes each trial's objective history (`rlops.dev/history`, from
progress.jsonl) that the Sweep's early stopping plans from; each job is told its rung
(`rlops.dev/pause-at`), so a trial ends by itself exactly there and is held Paused by its
pause point (never resubmitted on its own) until a promotion moves the annotation, then
resumes in a job of its own and continues its iterations; the sweep finishes. The trainer is
the fake runtime (tests/slurm/fake_runtime.py), paced so that a pause asked after the rung
would land iterations late.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlops.api import RLExperiment, Sweep
from rlops.api.annotations import ANNOTATION_HISTORY, ANNOTATION_PROMOTIONS
from rlops.api.runinfo import read_progress
from rlops.backends.slurm import default_run_dir
from rlops.lifecycle.history import decode_history
from tests.builders import sweep
from tests.slurm.fake_runtime import fake_python
from tests.slurm.test_bridge import World, sbatch_calls, world
from tests.slurm.test_bridge_packing import reconcile

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]
__all__ = ["world"]  # the fixture, shared with test_bridge

RUNGS = (1, 2)
ITERATIONS = 4


def asha_sweep(tmp_path: Path, namespace: str) -> Sweep:
    asha = {"type": "asha", "variant": "promotion", "gracePeriod": RUNGS[0],
            "reductionFactor": 2, "maxIterations": ITERATIONS}  # fmt: skip
    placement = {"cluster": "hpc", "python": str(fake_python(tmp_path))}
    environment = {"id": "CartPole-v1", "config": {"seconds_per_iteration": 0.3}}
    body = (
        sweep("rungs", namespace=namespace)
        .template("stop", {"iterations": ITERATIONS})
        .template("environment", environment)
        .template("placement", {"backend": "slurm", "slurm": placement})
        .param("config.training.lr", "grid", values=[1e-3, 3e-3, 1e-2])
        .set("spec.parallelism", 3)
        .set("spec.earlyStopping", asha)
        .obj()
    )
    body["metadata"].update(uid="rungs-uid", generation=1)
    return Sweep.model_validate(body)


def test_asha_trials_on_slurm_end_at_their_rungs_and_resume_when_promoted(
    world: World, tmp_path: Path
) -> None:
    spec = asha_sweep(tmp_path, world.namespace)
    bridge = world.bridge()
    names = [f"rungs-{i}" for i in range(3)]
    world.poll_until(bridge, lambda: reconcile(world, spec), timeout=240)

    promoted = {}
    for name in names:
        body = world.get(name)
        assert body is not None
        annotations = body["metadata"]["annotations"]
        promoted[name] = int(annotations.get(ANNOTATION_PROMOTIONS, "0"))
        run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
        iterations = [r.iteration for r in read_progress(run_dir)]
        # Its iterations went on across its jobs, never repeated, never skipped.
        assert iterations == list(range(1, len(iterations) + 1)), (name, iterations)
        # Each job ended by itself at its rung: a trial promoted n times ends at rung n+1
        # (or at the budget), never past it.
        ends = (*RUNGS, ITERATIONS)
        assert iterations[-1] == ends[promoted[name]], (name, iterations, promoted[name])
        # The bridge wrote the history the sweep's early stopping planned from.
        history = dict(decode_history(annotations.get(ANNOTATION_HISTORY, "")))
        assert sorted(history) == iterations, (name, history)
    # The engine's promotions (asynchronous, so their count depends on who reached a rung
    # first): the worst trial stayed at the first rung, the best went to the budget.
    assert promoted["rungs-0"] == 0 and promoted["rungs-2"] == len(RUNGS), promoted
    # One job per launch: each trial's first, and one per promotion.
    assert sbatch_calls(world) == len(names) + sum(promoted.values())
