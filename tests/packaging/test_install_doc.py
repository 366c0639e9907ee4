"""docs/install-kubernetes.md, step by step: what the walk-through applies and runs holds.

- every file the page applies exists and parses; the Kubernetes objects match the client's
  models, the rlops ones pass the validator and the CRDs (with their CEL rules);
- the namespace enforces Pod Security `restricted`; the sweep names the queue, the claim
  and the namespace the other manifests create;
- each `helm install` command of the page renders with Helm's real library;
- the refusal the page shows carries the validator's messages for its typo manifest;
- the namespace and the sweep (server-side dry run) are applied on the test bed.

Kueue's admission and a ReadWriteMany storage class are not on the test bed: their
manifests are checked for shape and names only.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.crd import crd
from rlops.api.experiment import StorageSpec
from rlops.api.validation import validate_manifest
from tests.conftest import ROOT
from tests.kube.fixtures import KubeTestBed
from tests.kube.schema import StructuralSchema
from tests.packaging.conftest import install_chart
from tests.packaging.kubemodels import schema_errors

JSON = dict[str, Any]

DOC = ROOT / "docs" / "install-kubernetes.md"
TEXT = DOC.read_text()
BASH = re.findall(r"```bash\n(.*?)```", TEXT, re.S)


def applied_files() -> list[Path]:
    """The files of `kubectl apply -f FILE` in the page's commands."""
    found = re.findall(r"kubectl apply[^\n]*?-f (\S+\.yaml)", "\n".join(BASH))
    return [ROOT / f for f in dict.fromkeys(found)]


def objects(name: str) -> list[JSON]:
    path = ROOT / "docs" / "install" / name
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def first(name: str, kind: str) -> JSON:
    return next(o for o in objects(name) if o["kind"] == kind)


def needs_claims() -> None:
    if "persistentVolumeClaim" not in {f.alias for f in StorageSpec.model_fields.values()}:
        pytest.skip("spec.storage.persistentVolumeClaim is not in this tree's model yet")


def test_every_file_the_page_applies_exists_and_parses() -> None:
    files = applied_files()
    assert {f.name for f in files} >= {
        "namespace.yaml",
        "kueue.yaml",
        "storage-pvc.yaml",
        "first-sweep.yaml",
        "typo-experiment.yaml",
    }
    for path in files:
        assert path.exists(), path
        assert list(yaml.safe_load_all(path.read_text())), path


def test_kubernetes_objects_match_their_schemas_and_the_namespace_is_restricted() -> None:
    for name in ("namespace.yaml", "storage-pvc.yaml"):
        for obj in objects(name):
            assert schema_errors(obj) == [], name
    labels = first("namespace.yaml", "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    claim = first("storage-pvc.yaml", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_sweep_names_what_the_other_steps_create() -> None:
    namespace = first("namespace.yaml", "Namespace")["metadata"]["name"]
    flavor = first("kueue.yaml", "ResourceFlavor")["metadata"]["name"]
    cluster_queue = first("kueue.yaml", "ClusterQueue")
    local_queue = first("kueue.yaml", "LocalQueue")
    assert cluster_queue["spec"]["resourceGroups"][0]["flavors"][0]["name"] == flavor
    assert local_queue["spec"]["clusterQueue"] == cluster_queue["metadata"]["name"]
    claim = first("storage-pvc.yaml", "PersistentVolumeClaim")
    sweep = first("first-sweep.yaml", "Sweep")
    template = sweep["spec"]["template"]
    assert {local_queue["metadata"]["namespace"], claim["metadata"]["namespace"]} == {namespace}
    assert sweep["metadata"]["namespace"] == namespace
    assert template["placement"]["kubernetes"]["queue"] == local_queue["metadata"]["name"]
    assert template["storage"]["persistentVolumeClaim"] == claim["metadata"]["name"]


def test_the_first_sweep_passes_the_validator_and_the_crd() -> None:
    needs_claims()
    sweep = first("first-sweep.yaml", "Sweep")
    assert validate_manifest(sweep) == []
    schema = crd("Sweep")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert StructuralSchema(schema).validate(sweep) == []


def test_the_refusal_the_page_shows_is_the_validators() -> None:
    typo = first("typo-experiment.yaml", "RLExperiment")
    errors = validate_manifest(typo)
    assert [e.path for e in errors] == ["spec.config.training.num_epoch", "spec.stop.timesteps"]
    shown = TEXT[TEXT.index("denied the request") :]
    assert f"denied the request: {len(errors)} errors:" in " ".join(
        TEXT[TEXT.index('"rlexperiments.validation') :].split()
    )
    for error in errors:
        assert str(error)[:80] in shown, str(error)
    schema = crd("RLExperiment")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert StructuralSchema(schema).validate(typo) == []  # so it is the webhook that refuses


def helm_values(command: str) -> JSON:
    """The values of a `helm install ... --set k=v` command."""
    values: JSON = {}
    words = shlex.split(command.replace("\\\n", " "))
    for index, word in enumerate(words):
        if word == "--set":
            key, _, value = words[index + 1].partition("=")
            if key.startswith("'") or "{" in value:
                continue
            node = values
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return values


@pytest.mark.helm
def test_the_helm_install_commands_of_the_page_render(tmp_path: Path) -> None:
    commands = [
        block[block.index("helm install rlops") :].split("\n\n")[0]
        for block in BASH
        if "helm install rlops charts/rlops" in block
    ]
    assert len(commands) >= 2
    for command in commands:
        values = helm_values(command.split("\nkubectl")[0])
        code, answer, created = install_chart(tmp_path, values)
        assert code == 0, (command, answer)
        assert "ValidatingWebhookConfiguration" in {o["kind"] for o in created}


@pytest.mark.e2e
def test_the_namespace_and_the_sweep_apply_on_the_test_bed(kube: KubeTestBed) -> None:
    namespace = first("namespace.yaml", "Namespace")["metadata"]["name"]
    done = kube.kubectl("apply", "-f", str(ROOT / "docs" / "install" / "namespace.yaml"))
    assert done.returncode == 0, done.stderr
    try:
        got = kube.kubectl("get", "namespace", namespace, "-o", "yaml", check=True).stdout
        assert "pod-security.kubernetes.io/enforce: restricted" in got
        needs_claims()
        sweep = str(ROOT / "docs" / "install" / "first-sweep.yaml")
        done = kube.kubectl("apply", "--dry-run=server", "-f", sweep)
        assert done.returncode == 0, done.stderr
        assert "sweep.rlops.dev/first-sweep created (server dry run)" in done.stdout
    finally:
        kube.delete_namespace(namespace)
