"""A PBT exploit through the SLURM bridge, on the real SLURM cluster (RLExperiments in the
Kubernetes test bed, the tabular-Q command trainer as the program): a Paused trial resumed
with the sweep's exploit patch (new `spec.config`, `spec.checkpoint.exploit`, the exploits
annotation) is submitted as a new job of the same attempt whose runtime copies the source
trial's latest checkpoint in, with the trial's own counters, and trains on to Succeeded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rlops.api import Exploit, RLExperiment
from rlops.backends.slurm import default_run_dir
from rlops.operator.pbt import exploit_patch
from rlops.sweep import ExploitPlan
from tests.builders import TABULAR_Q, tabular_q
from tests.conftest import ROOT
from tests.slurm.test_bridge import GROUP, PLURAL, VERSION, World, world

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]
__all__ = ["world"]  # the fixture, shared with test_bridge
FINISHED = ("Succeeded", "Failed", "Stopped")


def trainer(name: str, iterations: int, alpha: float) -> Any:
    return (
        tabular_q(name, alpha=alpha)
        .set("spec.command", ["python", str(ROOT / TABULAR_Q)])
        .set("spec.stop", {"iterations": iterations})
        .set("spec.checkpoint", {"frequency": 2, "keep": 2})
        .slurm()
    )


def progress(run_dir: Any) -> list[dict[str, Any]]:
    path = run_dir / "progress.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_an_exploit_resumes_as_a_slurm_job_from_the_source_checkpoint(world: World) -> None:
    bridge = world.bridge()
    source = world.create(trainer("pbt-src", iterations=20, alpha=0.3))
    target = world.create(trainer("pbt-dst", iterations=400, alpha=0.0005))
    source_dir = default_run_dir(RLExperiment.model_validate(source), world.backend.settings)
    run_dir = default_run_dir(RLExperiment.model_validate(target), world.backend.settings)
    world.poll_until(bridge, lambda: world.status("pbt-src").get("phase") in FINISHED, 240)
    assert world.status("pbt-src")["phase"] == "Succeeded"
    world.poll_until(bridge, lambda: len(progress(run_dir)) >= 4, 240)

    pause = {"rlops.dev/pause": "paused by sweep s in the bottom quantile (pbt)"}
    world.api.patch_namespaced_custom_object(
        GROUP, VERSION, world.namespace, PLURAL, "pbt-dst", {"metadata": {"annotations": pause}}
    )
    world.poll_until(bridge, lambda: world.status("pbt-dst").get("phase") == "Paused", 120)
    first = world.status("pbt-dst")["backendRef"]["jobId"]
    world.poll_until(bridge, lambda: (run_dir / "result.json").exists(), 120)
    paused_at = progress(run_dir)[-1]["iteration"]

    body = world.get("pbt-dst")
    assert body is not None
    spec = RLExperiment.model_validate(body).spec
    config = {**spec.config, "alpha": 0.36}
    checkpoint = spec.checkpoint.model_copy(
        update={"exploit": {"source": "../pbt-src", "iteration": paused_at}}
    )
    new_spec = spec.model_validate(
        {**spec.dump(), "config": config, "checkpoint": checkpoint.dump()}
    )
    exploit = Exploit(iteration=paused_at, source="pbt-src", parameters={"config.alpha": 0.36})
    resume = {"metadata": {"annotations": {"rlops.dev/pause": None,
                                           "rlops.dev/promotions": "1"}}}  # fmt: skip
    patch = exploit_patch(ExploitPlan("pbt-dst", exploit, new_spec), (), resume)
    world.api.patch_namespaced_custom_object(
        GROUP, VERSION, world.namespace, PLURAL, "pbt-dst", patch
    )
    world.poll_until(bridge, lambda: world.status("pbt-dst").get("phase") in FINISHED, 300)

    status = world.status("pbt-dst")
    assert status["phase"] == "Succeeded" and status["attempts"] == 1, status
    second = status["backendRef"]["jobId"]
    assert second != first
    marker = json.loads((run_dir / "exploit.json").read_text())
    assert marker == {"source": "../pbt-src", "iteration": paused_at}
    output = (run_dir / f"slurm-{second}.out").read_text()
    assert "exploit: continuing from pbt-src's checkpoint" in output
    assert json.loads((run_dir / "config.json").read_text())["alpha"] == 0.36
    iterations = [r["iteration"] for r in progress(run_dir)]
    assert iterations[-1] >= 400 > paused_at  # its own budget, counted on from its own
    drops = [i for i in range(1, len(iterations)) if iterations[i] != iterations[i - 1] + 1]
    assert len(drops) <= 1  # at most a few iterations again, from the copied checkpoint's
    assert source_dir.parent == run_dir.parent  # `../pbt-src` is the source's run directory
