"""A PBT sweep's exploits on Kubernetes: read from, and written to, the child RLExperiment.

An exploit resumes a Paused trial with one merge patch: the pause annotation removed (as
any resume), the promotions count, the new parameters and the exploits list in
annotations, and the new `spec.config` with `spec.checkpoint.exploit` naming the source
run directory. The experiment's driver starts the resumed run from the patched spec, and
the runtime copies the source's checkpoint in before it trains.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rlops.api import Exploit
from rlops.api.annotations import ANNOTATION_EXPLOITS, ANNOTATION_PARAMETERS
from rlops.sweep import ExploitPlan


def read_exploits(annotations: Mapping[str, str]) -> tuple[Exploit, ...]:
    """The exploits `rlops.dev/exploits` records (none when absent)."""
    text = annotations.get(ANNOTATION_EXPLOITS)
    if not text:
        return ()
    return tuple(Exploit.model_validate(e) for e in json.loads(text))


def exploit_patch(
    plan: ExploitPlan, previous: tuple[Exploit, ...], resume: dict[str, Any]
) -> dict[str, Any]:
    """The resume patch `resume` (annotations) with the exploit's spec and records."""
    exploits = [e.dump() for e in (*previous, plan.exploit)]
    spec = plan.spec.dump()
    annotations = {
        **resume["metadata"]["annotations"],
        ANNOTATION_PARAMETERS: json.dumps(plan.exploit.parameters, sort_keys=True),
        ANNOTATION_EXPLOITS: json.dumps(exploits, sort_keys=True),
    }
    return {
        "metadata": {"annotations": annotations},
        "spec": {"config": spec.get("config", {}), "checkpoint": spec["checkpoint"]},
    }
