"""A PBT sweep of the command-trainer example (tabular Q-learning, standard library only),
for the end-to-end runs on real SLURM and on the Kubernetes test bed: small learning rates
learn slowly, so trials are still training when the bottom one exploits the top one."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import EXAMPLES


def tabular_pbt(name: str = "tabular-pbt") -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / "command-sweep.yaml").read_text())
    manifest["metadata"]["name"] = name
    spec = manifest["spec"]
    spec.update(
        algorithm="pbt",
        seedsPerTrial=1,
        maxTrials=4,
        parallelism=2,
        seed=1,
        pbt={"perturbationInterval": 4, "quantileFraction": 0.25, "resampleProbability": 0.25},
        parameters={"config.alpha": {"type": "loguniform", "low": 0.0005, "high": 0.004}},
    )
    spec["template"]["checkpoint"]["frequency"] = 2
    return manifest
