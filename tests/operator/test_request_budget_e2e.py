"""The operator's cost to the Kubernetes API: at most 10 requests per trial lifecycle.

A real `rlops operator` process runs a 16-trial sweep against its own API server emulator,
through bench/bench_operator.py's lifecycle (the bench plays KubeRay: Initializing, Running,
one progress record, the result, Complete), and every request the operator makes is counted
at the emulator by the bench's own counter. Each trial is created once (no second create
of a child the index has not shown yet).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 16
BUDGET = 10.0


@pytest.fixture
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_operator

        yield bench_operator
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_a_trial_lifecycle_costs_at_most_ten_requests(bench: ModuleType, tmp_path: Path) -> None:
    from tests.kube import apiserver
    from tests.kube.fixtures import KubeTestBed, crd_files

    stop_counting = bench.count_requests()
    emulator = apiserver.Emulator(crd_files()).start()
    try:
        kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
        kube = KubeTestBed(kubeconfig, emulator.url, tmp_path)
        life = bench.lifecycle(kube, bench.Api(emulator.url), tmp_path, TRIALS)
    finally:
        stop_counting()
        emulator.stop()
    counts = life["counts"]
    per_trial = sum(counts.values()) / TRIALS
    assert per_trial <= BUDGET, sorted(counts.items(), key=lambda kv: -kv[1])
    assert counts[("POST", "rlexperiments")] == TRIALS, counts
    assert counts[("POST", "rayjobs")] == TRIALS, counts
    assert all(o["status"]["phase"] == "Succeeded" for o in life["objects"]["RLExperiment"])
