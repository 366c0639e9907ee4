"""PBT on the Kubernetes test bed: the tabular-Q PBT sweep (tests/runner/pbt_manifest.py)
applied with the real kubectl, reconciled by `rlops operator` (a real process), its trials
run as RayJobs by the KubeRay stand-in. A trial in the bottom quantile is paused, and its
child RLExperiment is patched in one go: new parameters and `spec.checkpoint.exploit`, the
exploits in `rlops.dev/exploits`; its resumed run's runtime copies the source's checkpoint
in (exploit.json in its run directory) and trains on. The Sweep's top trials carry the
exploits."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.builders import TABULAR_Q
from tests.conftest import ROOT
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, names, status_of
from tests.runner.pbt_manifest import tabular_pbt
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_pbt_exploits_on_kubernetes(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    sweep = tabular_pbt("tabular-pbt")
    name = sweep["metadata"]["name"]
    template = sweep["spec"]["template"]
    template["command"] = ["python", str(ROOT / TABULAR_Q)]  # as an image would hold it
    template["placement"] = {"backend": "kubernetes"}
    kube.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sweep), check=True)

    def done() -> str | None:
        phase = status_of(kube, "sweep", ns, name).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(done, 400, "the sweep to finish", interval=1.0) == "Succeeded"
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert 2 <= len(trials) <= sweep["spec"]["maxTrials"]
    exploited = {}
    for trial in trials:
        child = json.loads(kube.kubectl("get", "rlx", "-n", ns, trial, "-o", "json").stdout)
        annotations = child["metadata"]["annotations"]
        exploits = json.loads(annotations.get("rlops.dev/exploits") or "[]")
        if not exploits:
            continue
        exploited[trial] = exploits
        last = exploits[-1]
        assert last["source"] in trials and last["source"] != trial
        assert json.loads(annotations["rlops.dev/parameters"]) == last["parameters"]
        assert child["spec"]["config"]["alpha"] == last["parameters"]["config.alpha"]
        exploit = {"source": f"../{last['source']}", "iteration": last["iteration"]}
        assert child["spec"]["checkpoint"]["exploit"] == exploit
        run_dir = operator.workdir / "runs" / ns / trial
        assert json.loads((run_dir / "exploit.json").read_text()) == exploit
        progress = [json.loads(line) for line in (run_dir / "progress.jsonl").open()]
        iterations = [p["iteration"] for p in progress]
        # A pause here deletes the RayJob; the resumed run goes on from the trial's latest
        # checkpoint (the copied one carries its counters), so a few iterations may repeat.
        drops = [i for i in range(1, len(iterations)) if iterations[i] != iterations[i - 1] + 1]
        start = drops[-1] if drops else 0
        assert iterations[start:] == list(range(iterations[start], iterations[-1] + 1))
        assert iterations[start] <= last["iteration"] + 1
        assert iterations[-1] > last["iteration"]  # it trained after the exploit
        assert child["status"]["phase"] in ("Succeeded", "Stopped")
    assert exploited, "no trial exploited"
    top = status_of(kube, "sweep", ns, name)["top"]
    for summary in top:
        assert summary.get("exploits", []) == exploited.get(summary["name"], [])
