"""docs/gitops.md: its YAML parses, and its Argo CD health check does what the table says.

The Lua script is taken from the document itself and run in Lua 5.1 (the language
version of Argo CD's gopher-lua) on RLExperiments whose conditions come from the
operator's own `experiment_conditions`, one per phase.
"""

from __future__ import annotations

import re
from typing import Any

import lupa.lua51 as lua
import pytest
import yaml

from rlops.api import Phase
from rlops.lifecycle.conditions import experiment_conditions
from tests.conftest import ROOT

GITOPS = (ROOT / "docs" / "gitops.md").read_text()
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", GITOPS, flags=re.S)

EXPECTED = {
    Phase.PENDING: "Progressing",
    Phase.SUBMITTED: "Progressing",
    Phase.RUNNING: "Progressing",
    Phase.SUCCEEDED: "Healthy",
    Phase.FAILED: "Degraded",
    Phase.STOPPED: "Healthy",
    Phase.PAUSED: "Healthy",
}


def health_scripts() -> dict[str, str]:
    (config,) = [
        doc
        for block in YAML_BLOCKS
        for doc in yaml.safe_load_all(block)
        if doc and doc.get("metadata", {}).get("name") == "argocd-cm"
    ]
    return {k: v for k, v in config["data"].items() if k.startswith("resource.customizations")}


def assess(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    runtime = lua.LuaRuntime()
    check = runtime.eval(f"function(obj)\n{script}\nend")
    result = check(runtime.table_from(obj, recursive=True))
    return result["status"], result["message"]


def experiment(phase: Phase, generation: int = 3, observed: int = 3) -> dict[str, Any]:
    conditions = [c.dump() for c in experiment_conditions(phase, f"it is {phase}", observed)]
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "RLExperiment",
        "metadata": {"name": "x", "generation": generation},
        "status": {"phase": phase.value, "observedGeneration": observed, "conditions": conditions},
    }


def test_every_yaml_example_parses() -> None:
    assert len(YAML_BLOCKS) >= 5
    for block in YAML_BLOCKS:
        assert list(yaml.safe_load_all(block))


def test_one_health_check_serves_both_kinds() -> None:
    scripts = health_scripts()
    assert set(scripts) == {
        "resource.customizations.health.rlops.dev_RLExperiment",
        "resource.customizations.health.rlops.dev_Sweep",
    }
    assert len(set(scripts.values())) == 1


@pytest.mark.parametrize("phase", list(Phase), ids=str)
def test_health_follows_the_kstatus_conditions(phase: Phase) -> None:
    (script,) = set(health_scripts().values())
    status, message = assess(script, experiment(phase))
    assert status == EXPECTED[phase]
    assert message == f"it is {phase}"


def test_a_status_older_than_the_spec_is_progress_not_a_result() -> None:
    (script,) = set(health_scripts().values())
    assert assess(script, experiment(Phase.SUCCEEDED, generation=4, observed=3))[0] == "Progressing"
    assert assess(script, experiment(Phase.FAILED, generation=4, observed=3))[0] == "Progressing"


def test_an_object_the_operator_has_not_seen_is_progressing() -> None:
    (script,) = set(health_scripts().values())
    fresh = {"kind": "Sweep", "metadata": {"name": "x", "generation": 1}}
    assert assess(script, fresh)[0] == "Progressing"
