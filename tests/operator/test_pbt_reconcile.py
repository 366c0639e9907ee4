"""A PBT exploit on Kubernetes, as the sweep reconciler writes it: one merge patch of the
Paused child (pause removed, promotions counted, the new parameters and the exploits in
annotations, the explored `spec.config` and `spec.checkpoint.exploit`), read back by
trial_state as the trial's exploits and parameters; asked once."""

from __future__ import annotations

import json
from typing import Any

from rlops.api import Exploit, Phase
from rlops.operator.sweeps import reconcile_sweep, trial_state
from tests.builders import child_trial
from tests.operator.test_sweep_reconcile import NOW, stored_sweep

PAUSE = "rlops.dev/pause"


def pbt_children() -> tuple[Any, list[dict[str, Any]]]:
    spec = stored_sweep(
        algorithm="pbt", maxTrials=2, parallelism=2, pbt={"perturbationInterval": 2},
        parameters={"config.training.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
    )  # fmt: skip
    children = [child_trial(c) for c in reconcile_sweep(spec, [], NOW).create]
    children[0]["status"] = {"phase": "Running", "attempts": 1}
    children[0]["metadata"]["annotations"]["rlops.dev/history"] = "1:10,2:50,3:80"
    children[1]["status"] = {"phase": "Paused", "attempts": 1}
    children[1]["metadata"]["annotations"].update(
        {PAUSE: "paused by sweep grid in the bottom quantile (pbt)", "rlops.dev/history": "1:5,2:9"}
    )
    return spec, children


def test_an_exploit_is_one_patch_of_the_paused_child_read_back_as_its_exploits() -> None:
    spec, children = pbt_children()
    actions = reconcile_sweep(spec, children, NOW)
    (patch,) = [p for name, p in actions.patches if name == "grid-1"]
    annotations = patch["metadata"]["annotations"]
    assert annotations[PAUSE] is None and annotations["rlops.dev/promotions"] == "1"
    (exploit,) = json.loads(annotations["rlops.dev/exploits"])
    assert (exploit["iteration"], exploit["source"]) == (2, "grid-0")
    parameters = json.loads(annotations["rlops.dev/parameters"])
    assert parameters == exploit["parameters"]
    assert patch["spec"]["config"]["training"]["lr"] == parameters["config.training.lr"]
    assert patch["spec"]["checkpoint"]["exploit"] == {"source": "../grid-0", "iteration": 2}

    patched = children[1]
    patched["metadata"]["annotations"] = {
        k: v for k, v in {**patched["metadata"]["annotations"], **annotations}.items() if v
    }
    patched["spec"].update(patch["spec"])
    state = trial_state(patched, NOW)
    assert state is not None and state.phase == Phase.PENDING  # resumed, not restarted yet
    assert state.exploits == (Exploit.model_validate(exploit),)
    assert dict(state.parameters) == parameters
    again = reconcile_sweep(spec, [children[0], patched], NOW)
    assert [name for name, _ in again.patches if name == "grid-1"] == []  # asked once
