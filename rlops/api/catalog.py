"""What RLlib accepts, without importing Ray.

The operator and the SLURM bridge validate `spec.config` but must not depend on Ray,
so the algorithm names and each `AlgorithmConfig` method's keywords are recorded in
`rllib_catalog.json`, generated from the installed RLlib by `rlops catalog`
(`rlops.runtime.catalog`). A test regenerates it and fails on drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CATALOG_FILE = "rllib_catalog.json"

# Groups rlops sets itself from other spec fields; the user writes those fields instead.
MANAGED_GROUPS = {
    "environment": "spec.environment",
}
# Keywords rlops sets from `spec.resources` and `spec.seed`: one place for each setting.
MANAGED_KEYWORDS = {
    ("env_runners", "num_env_runners"): "spec.resources.envRunners",
    ("env_runners", "num_envs_per_env_runner"): "spec.resources.envsPerRunner",
    ("env_runners", "num_cpus_per_env_runner"): "spec.resources.cpusPerRunner",
    ("learners", "num_learners"): "spec.resources.learners",
    ("learners", "num_gpus_per_learner"): "spec.resources.gpusPerLearner",
    ("resources", "num_cpus_for_main_process"): "spec.resources.driverCpus",
    ("debugging", "seed"): "spec.seed",
}


@dataclass(frozen=True)
class Catalog:
    ray_version: str
    algorithms: dict[str, dict[str, list[str]]]

    def algorithm_names(self) -> list[str]:
        return sorted(self.algorithms)

    def groups(self, algorithm: str) -> dict[str, list[str]]:
        return self.algorithms[algorithm]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Catalog:
        return cls(ray_version=data["ray_version"], algorithms=data["algorithms"])


@cache
def load_catalog() -> Catalog:
    text = resources.files("rlops.api").joinpath(CATALOG_FILE).read_text()
    return Catalog.from_json(json.loads(text))
