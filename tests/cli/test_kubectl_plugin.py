"""`kubectl rlops`: the real kubectl finds the `kubectl-rlops` entry point on PATH and runs
it against the Kubernetes test bed: status (-o json), stop, pause, resume and retry as
annotations on the RLExperiment, logs (and `logs -f`) of a trial whose RayJob is gone read
from the driver's copy in its run directory, report from that run directory, and clear
errors for a Sweep or an unknown name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.builders import experiment, sweep
from tests.cli.rundirs import write_trial
from tests.cli.shims import write_shims
from tests.cli.test_status import create
from tests.kube.fixtures import KubeTestBed

pytestmark = pytest.mark.e2e


class Plugin:
    def __init__(self, kube: KubeTestBed, namespace: str, bin_dir: Path) -> None:
        self.kube, self.ns = kube, namespace
        self.env = {**kube.kubectl_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args], capture_output=True, text=True, env=self.env, timeout=60
        )

    def ok(self, *args: str) -> str:
        done = self.kubectl("rlops", *args, "-n", self.ns)
        assert done.returncode == 0, f"kubectl rlops {' '.join(args)}: {done.stderr}"
        return done.stdout

    def annotations(self, name: str) -> dict[str, str]:
        done = self.kubectl("get", "rlx", name, "-n", self.ns, "-o", "json")
        assert done.returncode == 0, done.stderr
        body: dict[str, Any] = json.loads(done.stdout)
        return {
            k: v for k, v in body["metadata"].get("annotations", {}).items() if "rlops.dev" in k
        }


@pytest.fixture
def plugin(kube: KubeTestBed, kube_namespace: str, tmp_path: Path) -> Plugin:
    (tmp_path / "bin").mkdir()
    return Plugin(kube, kube_namespace, write_shims(tmp_path / "bin"))


def rayjob_status(phase: str, attempts: int = 1) -> dict[str, Any]:
    return {
        "phase": phase,
        "backend": "kubernetes",
        "attempts": attempts,
        "backendRef": {"kind": "RayJob", "name": "a"},
        "progress": {"iteration": 2, "timesteps": 1000, "episodeReturnMean": 42.0},
    }


def test_kubectl_lists_the_plugin(plugin: Plugin) -> None:
    done = plugin.kubectl("plugin", "list")
    assert "kubectl-rlops" in done.stdout, done.stdout + done.stderr


def test_status_through_kubectl(plugin: Plugin, tmp_path: Path) -> None:
    create(plugin.kube, plugin.ns, "rlexperiments", experiment("a").obj(), rayjob_status("Running"))
    data = json.loads(plugin.ok("status", "-o", "json"))
    [a] = data["experiments"]
    assert (a["name"], a["phase"], a["timesteps"], a["namespace"]) == (
        "a", "Running", 1000, plugin.ns
    )  # fmt: skip
    # Never a local run directory, even where ./rlops-runs exists.
    (tmp_path / "rlops-runs").mkdir()
    done = subprocess.run(
        ["kubectl", "rlops", "status", "a", "-n", plugin.ns], capture_output=True, text=True,
        env=plugin.env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "Running" in done.stdout, done.stderr


def test_stop_pause_resume_retry_annotate_the_experiment(plugin: Plugin) -> None:
    create(
        plugin.kube, plugin.ns, "rlexperiments", experiment("a").obj(), rayjob_status("Failed", 2)
    )
    plugin.ok("pause", "a", "--reason", "lunch")
    assert plugin.annotations("a") == {"rlops.dev/pause": "lunch"}
    plugin.ok("resume", "a")
    assert plugin.annotations("a") == {}
    plugin.ok("retry", "a")
    assert plugin.annotations("a") == {"rlops.dev/attempt": "3"}
    plugin.ok("stop", "a")
    assert plugin.annotations("a")["rlops.dev/stop"] == "requested"


def test_steering_a_sweep_or_a_missing_name_is_refused(plugin: Plugin) -> None:
    create(plugin.kube, plugin.ns, "sweeps", sweep("s").param("config.training.lr", "grid",
           values=[0.1]).obj(), {"phase": "Running"})  # fmt: skip
    done = plugin.kubectl("rlops", "stop", "s", "-n", plugin.ns)
    assert done.returncode == 1 and "s is a Sweep" in done.stderr
    done = plugin.kubectl("rlops", "pause", "ghost", "-n", plugin.ns)
    assert done.returncode == 1
    assert f"no Sweep or RLExperiment 'ghost' in namespace {plugin.ns}" in done.stderr


def test_logs_and_report_after_the_rayjob_is_gone(plugin: Plugin, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    run_dir = storage / plugin.ns / "a"
    write_trial(run_dir, "a", 0, [10.0, 42.0], 0, log="iteration 1\niteration 2\n")
    create(plugin.kube, plugin.ns, "rlexperiments", experiment("a").obj(),
           rayjob_status("Succeeded"))  # fmt: skip
    assert plugin.ok("logs", "a", "--root", str(storage)) == "iteration 1\niteration 2\n"
    assert plugin.ok("logs", "-f", "a", "--root", str(storage)) == "iteration 1\niteration 2\n"
    done = plugin.kubectl("rlops", "logs", "a", "-n", plugin.ns, "--root", str(tmp_path))
    assert done.returncode == 1 and "has no driver pod" in done.stderr
    index = Path(plugin.ok("report", "a", "--root", str(storage)).strip())
    assert index == run_dir / "report" / "index.html" and index.is_file()
