"""Memory the operator's kopf indexes keep for N trials, slim against whole bodies.

    .venv/bin/python bench/bench_indexes.py [--trials 20000]

Builds N sweep trials as the API server stores them (spec, a Running status with
progress and conditions, rlops labels and annotations, the label-selected RayJob with its
Ray cluster's pod templates, and managedFields as the API server adds them for three
field managers), runs the operator's index functions over them (experiments, trials,
rayjobs), drops the raw bodies and measures what the indexes still hold (tracemalloc),
then the same with whole bodies (`dict(body)`, what the indexes kept before). The
slim entries are those of `rlops.operator.handlers` (`experiment_entry`, `trial_entry`,
`rayjob_entry`: compact JSON of what the controller reads).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kopf  # noqa: E402

from rlops.api import RLExperiment  # noqa: E402
from rlops.api.settings import Settings  # noqa: E402
from rlops.backends.kuberay import build_rayjob  # noqa: E402
from rlops.operator.handlers import (  # noqa: E402
    compact_trial,
    experiment_entry,
    rayjob_entry,
    trial_entry,
)
from tests.builders import experiment  # noqa: E402


def fields(value: Any) -> Any:
    """managedFields' fieldsV1 of a value: `f:<key>` for every key, as the API server writes."""
    if isinstance(value, dict):
        return {f"f:{k}": fields(v) for k, v in value.items()}
    return {}


def managed(body: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [("kubectl-client-side-apply", "Update", {k: body[k] for k in ("metadata", "spec")}),
             ("rlops-operator", "Update", {"status": body.get("status", {})}),
             ("kopf", "Update", {"metadata": {"annotations": {}}})]  # fmt: skip
    return [{"manager": m, "operation": op, "apiVersion": body["apiVersion"],
             "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields(f)}
            for m, op, f in parts]  # fmt: skip


def trial(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"sweep-{i}-s0"
    body = (experiment(name, "team").config("training", lr=0.001 * (i % 7 + 1))
            .set("metadata.labels", {"rlops.dev/sweep": "sweep", "rlops.dev/trial": str(i)})
            .set("metadata.uid", f"00000000-0000-0000-0000-{i:012d}").obj())  # fmt: skip
    body["metadata"]["annotations"] = {
        "rlops.dev/history": "1:10.0,2:20.0,3:30.0",
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(body),
    }
    body["status"] = {
        "phase": "Running", "attempts": 1, "message": "training", "observedGeneration": 1,
        "progress": {"iteration": 3, "timesteps": 12000, "episodeReturnMean": 30.0,
                     "percent": 12.5, "updatedAt": "2026-01-01T00:00:00Z"},
        "backendRef": {"kind": "RayJob", "name": name}, "startedAt": "2026-01-01T00:00:00Z",
        "conditions": [{"type": t, "status": "False", "reason": "Running", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}
                       for t in ("Ready", "Reconciling", "Stalled")],
    }  # fmt: skip
    body["metadata"]["managedFields"] = managed(body)
    rayjob = build_rayjob(RLExperiment.model_validate(body), Settings())
    rayjob["status"] = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    rayjob["metadata"]["managedFields"] = managed(rayjob)
    return body, rayjob


def held(trials: int, whole: bool) -> int:
    """Bytes still allocated once the raw bodies are gone: what the indexes keep."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    indexes: list[Any] = []
    for i in range(trials):
        body, rayjob = trial(i)
        b, r = kopf.Body(body), kopf.Body(rayjob)
        if whole:
            indexes.append((dict(b), compact_trial(b), dict(r)))
        else:  # the entries the operator's index functions keep (compact JSON)
            indexes.append((experiment_entry(b), trial_entry(b), rayjob_entry(r)))
        del body, rayjob, b, r
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del indexes
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20000)
    args = parser.parse_args()
    for whole in (True, False):
        size = held(args.trials, whole)
        label = "whole bodies" if whole else "slim indexes"
        print(f"{label}: {size / 2**20:.0f} MiB for {args.trials} trials "
              f"({size / args.trials / 1024:.1f} KiB per trial)")  # fmt: skip


if __name__ == "__main__":
    main()
