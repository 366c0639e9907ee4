"""What the CRDs can check themselves: `pattern`, `maxLength`, `minimum` and CEL rules.

The validator (`rlops validate`, the admission webhook) stays the authority and says
more; these rules make the API server refuse the same mistakes when no webhook is
installed. Each rule states a check of the validator in the CRD's terms, from the
validator's own patterns, so the two cannot drift apart. Keys are the pydantic models'
names (their `$defs`), so a rule holds wherever the model appears (a Sweep's template
is an RLExperimentSpec); `ROOT` rules sit on the resource itself (CEL may read
`metadata.name` there).
"""

from __future__ import annotations

import re
from typing import Any

from rlops.api.classrefs import ENTRY_POINT
from rlops.api.validation.errors import DNS_LABEL, DNS_SUBDOMAIN
from rlops.api.validation.experiment import GYM_ID, QUANTITY
from rlops.api.validation.manifest import MAX_EXPERIMENT_NAME, MAX_SWEEP_NAME
from rlops.api.validation.placement import SLURM_CONSTRAINT, SLURM_NAME, SLURM_TIME

JSON = dict[str, Any]


def _full(regex: re.Pattern[str]) -> str:
    return f"^(?:{regex.pattern})$"


def _name(limit: int) -> list[JSON]:
    # No fieldPath: the CRD's schema of metadata has no properties to point at.
    return [
        {
            "rule": f"self.metadata.name.size() <= {limit}",
            "messageExpression": (
                f"'metadata.name: ' + string(self.metadata.name.size()) + "
                f"' characters; at most {limit} allowed'"
            ),
        },
        {
            "rule": f"self.metadata.name.matches('{_full(DNS_LABEL)}')",
            "message": "metadata.name: not a valid name: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
        },
    ]


ROOT: dict[str, list[JSON]] = {
    "RLExperiment": _name(MAX_EXPERIMENT_NAME),
    "Sweep": _name(MAX_SWEEP_NAME),
}

# model -> property -> schema keywords
PROPERTIES: dict[str, dict[str, JSON]] = {
    "RLExperimentSpec": {
        "algorithm": {"maxLength": 64, "pattern": r"^[A-Za-z][A-Za-z0-9_]*$"},
        "image": {"maxLength": 512},
        "command": {"minItems": 1},
    },
    "EnvironmentSpec": {
        "id": {"maxLength": 256, "pattern": _full(GYM_ID)},
        "entryPoint": {"maxLength": 256, "pattern": _full(ENTRY_POINT)},
    },
    "ResourcesSpec": {
        "envRunners": {"minimum": 0},
        "envsPerRunner": {"minimum": 1},
        "learners": {"minimum": 0},
        "gpusPerLearner": {"minimum": 0},
        "nodes": {"minimum": 1},
        "memory": {"maxLength": 32, "pattern": _full(QUANTITY)},
    },
    "CheckpointSpec": {"frequency": {"minimum": 0}, "keep": {"minimum": 1}},
    "KubernetesPlacement": {
        "queue": {"maxLength": 253, "pattern": _full(DNS_SUBDOMAIN)},
        "serviceAccount": {"maxLength": 253, "pattern": _full(DNS_SUBDOMAIN)},
        "ttlSecondsAfterFinished": {"minimum": 0},
        "preRunningDeadlineSeconds": {"minimum": 0},
        "maxParallel": {"minimum": 1},
    },
    "SlurmPlacement": {
        "cluster": {"maxLength": 63, "pattern": _full(DNS_LABEL)},
        "partition": {"maxLength": 128, "pattern": _full(SLURM_NAME)},
        "account": {"maxLength": 128, "pattern": _full(SLURM_NAME)},
        "qos": {"maxLength": 128, "pattern": _full(SLURM_NAME)},
        "timeLimit": {"maxLength": 32, "pattern": _full(SLURM_TIME)},
        "constraint": {"maxLength": 512, "pattern": _full(SLURM_CONSTRAINT)},
    },
    "SweepSpec": {
        "maxTrials": {"minimum": 1},
        "parallelism": {"minimum": 1},
        "maxAttempts": {"minimum": 1},
        "seedsPerTrial": {"minimum": 1},
        "maxFailedTrials": {"minimum": 0},
    },
}

# model -> CEL rules (x-kubernetes-validations), in the validator's words
RULES: dict[str, list[JSON]] = {
    "RLExperimentSpec": [
        {
            "rule": "has(self.algorithm) != has(self.command)",
            "message": "set exactly one of `algorithm` (an RLlib algorithm) or `command` "
            "(a training program of your own)",
            "fieldPath": ".algorithm",
        },
        {
            "rule": "!has(self.command) || !has(self.environment)",
            "message": "RLlib algorithms only; a command trainer has its own",
            "fieldPath": ".environment",
        },
    ],
    "PlacementSpec": [
        {
            "rule": "!has(self.backend) || self.backend != 'slurm' || has(self.slurm)",
            "message": "required when backend is slurm (its cluster)",
            "fieldPath": ".slurm",
        },
    ],
    "SweepSpec": [
        {
            "rule": "!has(self.algorithm) || self.algorithm == 'grid' || has(self.maxTrials)",
            "messageExpression": "'required for algorithm ' + self.algorithm",
            "fieldPath": ".maxTrials",
        },
    ],
}


def add_rules(kind: str, raw: JSON) -> JSON:
    """`raw` (a model's JSON Schema, before it is made structural) with the rules above."""
    defs = raw.get("$defs", {})
    for model, fields in PROPERTIES.items():
        if model in defs:
            for name, keywords in fields.items():
                defs[model]["properties"][name].update(keywords)
    for model, rules in RULES.items():
        if model in defs:
            defs[model]["x-kubernetes-validations"] = rules
    raw["x-kubernetes-validations"] = ROOT[kind]
    return raw
