"""The same API semantics through the real kubectl, plus what users see of our CRDs.

Covers: create/get/list, 409 on a stale resourceVersion (`kubectl replace`),
generation rules, merge patch, status subresource isolation
(`--subresource=status`), 422 with field causes, strict field validation,
label selectors, ownerReference cascade, finalizers holding deletion, watch
event order (`get --watch --output-watch-events`), `kubectl apply` of the
example Sweep, printer columns of `kubectl get rlx`, the `rlops` category,
and `kubectl explain`. Runs against the emulator, or a real cluster with
RLOPS_TEST_KUBECONFIG.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from tests.builders import experiment, sweep
from tests.kube.fixtures import KubeTestBed
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


class Kubectl:
    """kubectl bound to one namespace; `ok()` asserts success and returns stdout."""

    def __init__(self, kube: KubeTestBed, namespace: str) -> None:
        self.kube, self.ns = kube, namespace

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.kube.kubectl("-n", self.ns, *args, input=input)

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self.run(*args, input=input)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    def apply(self, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", input=yaml.safe_dump(body))

    def get(self, resource: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.ok("get", resource, name, "-o", "json"))
        return obj

    def exists(self, resource: str, name: str) -> bool:
        done = self.run("get", resource, name, "--ignore-not-found", "-o", "name")
        assert done.returncode == 0, done.stderr
        return bool(done.stdout.strip())


@pytest.fixture
def kc(kube: KubeTestBed, kube_namespace: str) -> Kubectl:
    return Kubectl(kube, kube_namespace)


def test_create_get_and_list(kc: Kubectl) -> None:
    assert "rlexperiment.rlops.dev/a created" in kc.ok(
        "create", "-f", "-", input=yaml.safe_dump(experiment("a").obj())
    )
    kc.ok("create", "-f", "-", input=yaml.safe_dump(experiment("b").obj()))
    got = kc.get("rlexperiment", "a")
    assert got["metadata"]["uid"] and got["metadata"]["generation"] == 1
    assert kc.ok("get", "rlx", "-o", "name").split() == [
        "rlexperiment.rlops.dev/a",
        "rlexperiment.rlops.dev/b",
    ]
    assert kc.ok("get", "rlx", "a", "-o", "jsonpath={.spec.algorithm}") == "PPO"


def test_replace_with_stale_resource_version_conflicts(kc: Kubectl) -> None:
    kc.apply(experiment("a").obj())
    stale = kc.get("rlx", "a")
    kc.ok("patch", "rlx", "a", "--type", "merge", "-p", '{"spec":{"seed":1}}')
    stale["spec"]["seed"] = 2
    done = kc.run("replace", "-f", "-", input=json.dumps(stale))
    assert done.returncode != 0
    assert "the object has been modified" in done.stderr


def test_generation_counts_spec_changes_only(kc: Kubectl) -> None:
    kc.apply(experiment("a").obj())
    kc.ok("patch", "rlx", "a", "--type", "merge", "-p", '{"spec":{"seed":3}}')
    kc.ok("label", "rlx", "a", "team=rl")
    kc.ok("annotate", "rlx", "a", "note=x")
    kc.ok(
        "patch",
        "rlx",
        "a",
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        '{"status":{"phase":"Running"}}',
    )
    assert kc.ok("get", "rlx", "a", "-o", "jsonpath={.metadata.generation}") == "2"


def test_merge_patch(kc: Kubectl) -> None:
    kc.apply(experiment("a").set("spec.seed", 1).obj())
    kc.ok(
        "patch",
        "rlx",
        "a",
        "--type",
        "merge",
        "-p",
        '{"spec":{"stop":{"iterations":3},"seed":null}}',
    )
    spec = kc.get("rlx", "a")["spec"]
    assert spec["stop"] == {"timesteps": 2000, "iterations": 3} and "seed" not in spec


def test_status_subresource_is_isolated(kc: Kubectl) -> None:
    kc.apply(experiment("a").obj())
    patch = '{"status":{"phase":"Running"},"spec":{"seed":9}}'
    kc.ok("patch", "rlx", "a", "--subresource", "status", "--type", "merge", "-p", patch)
    got = kc.get("rlx", "a")
    assert got["status"]["phase"] == "Running" and "seed" not in got["spec"]
    kc.ok("patch", "rlx", "a", "--type", "merge", "-p", '{"status":{"phase":"Failed"}}')
    assert kc.get("rlx", "a")["status"]["phase"] == "Running"


def test_schema_violation_is_refused_with_the_field(kc: Kubectl) -> None:
    done = kc.apply(experiment("a").set("spec.resources.envRunners", "x").obj())
    assert done.returncode != 0
    assert 'RLExperiment "a" is invalid' in done.stderr
    assert "spec.resources.envRunners: Invalid value" in done.stderr
    assert not kc.exists("rlx", "a")


def test_unknown_fields_fail_strict_validation(kc: Kubectl) -> None:
    done = kc.apply(experiment("a").set("spec.bogus", 1).obj())
    assert done.returncode != 0 and 'unknown field "spec.bogus"' in done.stderr
    assert (
        kc.run(
            "apply",
            "--validate=false",
            "-f",
            "-",
            input=yaml.safe_dump(experiment("a").set("spec.bogus", 1).obj()),
        ).returncode
        == 0
    )
    assert "bogus" not in kc.get("rlx", "a")["spec"]


def test_label_selectors(kc: Kubectl) -> None:
    for name, env in (("a", "a"), ("b", "b"), ("c", None)):
        kc.apply(experiment(name).set("metadata.labels", {"env": env} if env else {}).obj())
    assert kc.ok("get", "rlx", "-l", "env in (a,b)", "-o", "name").split() == [
        "rlexperiment.rlops.dev/a",
        "rlexperiment.rlops.dev/b",
    ]
    assert kc.ok("get", "rlx", "-l", "!env", "-o", "name").split() == ["rlexperiment.rlops.dev/c"]
    assert kc.ok("get", "rlx", "-l", "env!=a", "-o", "name").split() == [
        "rlexperiment.rlops.dev/b",
        "rlexperiment.rlops.dev/c",
    ]


def test_deleting_an_owner_deletes_its_dependents(kc: Kubectl) -> None:
    kc.apply(sweep("s").obj())
    uid = kc.get("sweep", "s")["metadata"]["uid"]
    owner = {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "Sweep",
        "name": "s",
        "uid": uid,
        "controller": True,
    }
    kc.apply(experiment("s-0").set("metadata.ownerReferences", [owner]).obj())
    kc.ok("delete", "sweep", "s")
    wait_until(lambda: not kc.exists("rlx", "s-0"))


def test_finalizer_holds_deletion(kc: Kubectl) -> None:
    kc.apply(experiment("a").set("metadata.finalizers", ["rlops.dev/test"]).obj())
    kc.ok("delete", "rlx", "a", "--wait=false")
    assert kc.get("rlx", "a")["metadata"]["deletionTimestamp"]
    kc.ok("patch", "rlx", "a", "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    kc.ok("wait", "--for=delete", "rlx/a", "--timeout=10s")


def _watch_events(stream: IO[str]) -> Iterator[tuple[str, str]]:
    """(type, name) of each event `kubectl get --watch --output-watch-events -o json` prints."""
    decoder, buffer = json.JSONDecoder(), ""
    for line in stream:
        buffer += line
        try:
            event, _ = decoder.raw_decode(buffer.strip())
        except ValueError:
            continue
        buffer = ""
        yield event["type"], event["object"]["metadata"]["name"]


def test_watch_shows_events_in_order(kc: Kubectl) -> None:
    kc.apply(experiment("before").obj())
    watcher = subprocess.Popen(
        ["kubectl", "-n", kc.ns, "get", "rlx", "--watch", "--output-watch-events", "-o", "json"],
        stdout=subprocess.PIPE,
        text=True,
        env=kc.kube.kubectl_env(),
    )
    assert watcher.stdout is not None
    try:
        events = _watch_events(watcher.stdout)
        assert next(events) == ("ADDED", "before")  # the initial list; the watch follows
        kc.apply(experiment("b").obj())
        kc.ok("patch", "rlx", "b", "--type", "merge", "-p", '{"spec":{"seed":2}}')
        kc.ok("delete", "rlx", "b")
        seen = [next(events) for _ in range(3)]
    finally:
        watcher.kill()
        watcher.wait()
    assert seen == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "b")]


def test_apply_the_example_sweep_and_get_it(kc: Kubectl) -> None:
    assert "sweep.rlops.dev/cartpole-grid created" in kc.ok(
        "apply", "-f", str(EXAMPLES / "sweep.yaml")
    )
    assert "unchanged" in kc.ok("apply", "-f", str(EXAMPLES / "sweep.yaml"))
    lines = kc.ok("get", "sw").splitlines()
    assert lines[0].split()[0] == "NAME" and lines[1].split()[0] == "cartpole-grid"


def test_get_rlx_prints_the_status_columns(kc: Kubectl) -> None:
    kc.apply(experiment("a").obj())
    status = {
        "status": {
            "phase": "Running",
            "backend": "kubernetes",
            "progress": {"episodeReturnMean": 123.5, "timesteps": 4000},
        }
    }
    kc.ok(
        "patch", "rlx", "a", "--subresource", "status", "--type", "merge", "-p", json.dumps(status)
    )
    header, row = kc.ok("get", "rlx").splitlines()
    assert header.split() == ["NAME", "PHASE", "BACKEND", "RETURN", "TIMESTEPS", "AGE"]
    cells = row.split()
    assert cells[:5] == ["a", "Running", "kubernetes", "123.5", "4000"]
    assert cells[5].endswith(("s", "m"))


def test_get_rlops_lists_both_kinds(kc: Kubectl) -> None:
    kc.apply(experiment("a").obj())
    kc.apply(sweep("s").obj())
    names = {
        line.split()[0]
        for line in kc.ok("get", "rlops").splitlines()
        if not line.startswith("NAME") and line.strip()
    }
    assert names == {"rlexperiment.rlops.dev/a", "sweep.rlops.dev/s"}


def test_explain_reads_the_crd_schema(kc: Kubectl) -> None:
    out = kc.ok("explain", "rlx.spec.stop")
    assert "KIND:       RLExperiment" in out and "timesteps" in out
