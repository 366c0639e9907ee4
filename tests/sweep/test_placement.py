"""Placement of trials: the sweep's backend or the template's, burst (Kubernetes up to
maxParallel, then SLURM), moving trials that wait too long on Kubernetes, and the merge of
the Sweep's per-backend settings into each trial's spec."""

from __future__ import annotations

from rlops.api import Backend, Phase
from rlops.sweep import TrialState, plan
from tests.builders import SweepBuilder, sweep
from tests.sweep.simulation import spec_of


def burst(max_parallel: int = 2, after: int | None = 60, parallelism: int = 5) -> SweepBuilder:
    builder = sweep().param("config.training.lr", "grid", values=[0.1 / 2**i for i in range(8)])
    placement: dict[str, object] = {
        "backend": "burst",
        "kubernetes": {"maxParallel": max_parallel, "queue": "team-a"},
        "slurm": {"cluster": "hpc", "partition": "gpu"},
    }
    if after is not None:
        placement["burstAfterSeconds"] = after
    return builder.set("spec.placement", placement).set("spec.parallelism", parallelism)


def on(name: str, index: int, backend: Backend, phase: Phase, waiting: float = 0.0) -> TrialState:
    return TrialState(name, index, 0, {}, phase, backend=backend, waiting_seconds=waiting)


def test_burst_fills_kubernetes_then_overflows_to_slurm() -> None:
    p = plan(spec_of(burst(max_parallel=2)), "sw", [])
    assert [t.backend for t in p.create] == [Backend.KUBERNETES] * 2 + [Backend.SLURM] * 3
    k8s, slurm = p.create[0].spec.placement, p.create[-1].spec.placement
    assert k8s.backend == Backend.KUBERNETES and k8s.kubernetes is not None
    assert k8s.kubernetes.queue == "team-a" and k8s.kubernetes.max_parallel is None
    assert slurm.backend == Backend.SLURM and slurm.slurm is not None
    assert slurm.slurm.cluster == "hpc" and slurm.slurm.partition == "gpu"
    assert p.status.backends == {"kubernetes": 2, "slurm": 3}


def test_burst_counts_unfinished_kubernetes_trials_only() -> None:
    spec = spec_of(burst(max_parallel=2, parallelism=3))
    trials = [
        on("sw-0", 0, Backend.KUBERNETES, Phase.SUCCEEDED),
        on("sw-1", 1, Backend.KUBERNETES, Phase.RUNNING),
    ]
    assert [t.backend for t in plan(spec, "sw", trials).create] == [
        Backend.KUBERNETES,
        Backend.SLURM,
    ]


def test_trials_waiting_too_long_on_kubernetes_move_to_slurm() -> None:
    spec = spec_of(burst(max_parallel=3, after=60, parallelism=3))
    trials = [
        on("sw-0", 0, Backend.KUBERNETES, Phase.PENDING, waiting=61),
        on("sw-1", 1, Backend.KUBERNETES, Phase.SUBMITTED, waiting=30),
        on("sw-2", 2, Backend.KUBERNETES, Phase.RUNNING, waiting=500),
    ]
    p = plan(spec, "sw", trials)
    assert p.move == [("sw-0", Backend.SLURM)]
    assert p.status.backends == {"kubernetes": 2, "slurm": 1}


def test_no_moves_without_burst_after_seconds() -> None:
    spec = spec_of(burst(after=None))
    assert plan(spec, "sw", [on("sw-0", 0, Backend.KUBERNETES, Phase.PENDING, 1e6)]).move == []


def test_fixed_backend_merges_sweep_settings_over_the_templates() -> None:
    builder = sweep().param("config.training.lr", "grid", values=[0.1])
    builder.template("placement", {"backend": "slurm", "slurm": {"cluster": "a", "qos": "low"}})
    builder.set("spec.placement", {"backend": "slurm", "slurm": {"partition": "gpu"}})
    trial = plan(spec_of(builder), "sw", []).create[0]
    assert trial.backend == Backend.SLURM
    slurm = trial.spec.placement.slurm
    assert slurm is not None
    assert (slurm.cluster, slurm.qos, slurm.partition) == ("a", "low", "gpu")


def test_without_sweep_placement_trials_keep_the_templates_backend() -> None:
    builder = sweep().param("config.training.lr", "grid", values=[0.1])
    builder.template("placement", {"backend": "kubernetes", "kubernetes": {"queue": "q"}})
    trial = plan(spec_of(builder), "sw", []).create[0]
    assert trial.backend == Backend.KUBERNETES
    assert trial.spec.placement.kubernetes is not None
    assert trial.spec.placement.kubernetes.queue == "q"
