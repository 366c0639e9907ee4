"""The operator's index entries are slim: what the controller reads of an object (metadata
without managedFields or kubectl's last applied configuration, spec, status; a RayJob
without its spec), kept as compact JSON, and kopf's raw body sheds the unread parts once
indexed. The memory bound per trial is measured with tracemalloc on 200 trials."""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
from typing import Any

import kopf

from rlops.api import RLExperiment
from rlops.api.settings import Settings
from rlops.backends.kuberay import build_rayjob
from rlops.operator.handlers import compact_trial, experiment_entry, rayjob_entry, trial_entry
from rlops.operator.indexes import Indexes
from rlops.operator.packed import UNREAD_ANNOTATION, Packed
from tests.builders import experiment

MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {f"f:field{i}": {} for i in range(40)}}}]  # fmt: skip


def stored_trial(i: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """A running trial and its RayJob as the API server stores them."""
    body = (experiment(f"t-{i}", "team").set("metadata.labels", {"rlops.dev/sweep": "s"})
            .set("metadata.uid", f"uid-{i}").obj())  # fmt: skip
    body["metadata"]["annotations"] = {"rlops.dev/history": "1:10.0",
                                       UNREAD_ANNOTATION: json.dumps(body)}  # fmt: skip
    body["status"] = {"phase": "Running", "attempts": 1, "observedGeneration": 1,
                      "backendRef": {"kind": "RayJob", "name": f"t-{i}"}}  # fmt: skip
    body["metadata"]["managedFields"] = copy.deepcopy(MANAGED)
    rayjob = build_rayjob(RLExperiment.model_validate(body), Settings())
    rayjob["status"] = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    rayjob["metadata"]["managedFields"] = copy.deepcopy(MANAGED)
    return body, rayjob


def test_experiment_entry_holds_only_what_the_controller_reads() -> None:
    raw, _ = stored_trial()
    entry = experiment_entry(kopf.Body(copy.deepcopy(raw)))
    read = entry.body()
    assert set(read) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "managedFields" not in read["metadata"]
    assert read["metadata"]["annotations"] == {"rlops.dev/history": "1:10.0"}
    assert read["spec"] == raw["spec"] and read["status"] == raw["status"]
    assert read["metadata"]["uid"] == "uid-0" and read["metadata"]["labels"] == {
        "rlops.dev/sweep": "s"
    }


def test_rayjob_entry_keeps_metadata_and_status_only() -> None:
    _, raw = stored_trial()
    read = rayjob_entry(kopf.Body(copy.deepcopy(raw))).body()
    assert set(read) == {"metadata", "status"}
    assert read["status"] == raw["status"] and "managedFields" not in read["metadata"]


def test_kopfs_raw_body_sheds_what_nothing_reads() -> None:
    experiment_raw, rayjob_raw = stored_trial()
    experiment_entry(kopf.Body(experiment_raw))
    assert "spec" in experiment_raw  # the trials index, called next, reads it
    trial = trial_entry(kopf.Body(experiment_raw)).body()
    assert trial["spec"]["placement"] == stored_trial()[0]["spec"].get("placement", {})
    rayjob_entry(kopf.Body(rayjob_raw))
    for raw in (experiment_raw, rayjob_raw):
        assert set(raw) == {"apiVersion", "kind", "metadata"}
        assert "managedFields" not in raw["metadata"]
        assert UNREAD_ANNOTATION not in (raw["metadata"].get("annotations") or {})
        assert raw["metadata"]["name"] == "t-0"
    lone = experiment("alone", "team").obj()
    experiment_entry(kopf.Body(lone))  # no sweep: no trials index reads it after
    assert set(lone) == {"apiVersion", "kind", "metadata"}


def test_indexes_read_packed_entries_as_plain_bodies() -> None:
    raw, rayjob = stored_trial()
    indexes = Indexes()
    key = ("team", "t-0")
    child = Packed(compact_trial(kopf.Body(raw)))
    indexes.bind(experiments={key: [experiment_entry(kopf.Body(copy.deepcopy(raw)))]},
                 rayjobs={key: [rayjob_entry(kopf.Body(copy.deepcopy(rayjob)))]},
                 trials={("team", "s"): [child]})  # fmt: skip
    body = indexes.experiment(key)
    assert body is not None and body["metadata"]["name"] == "t-0"
    seen = indexes.rayjob(key)
    assert seen is not None and seen["status"] == rayjob["status"]
    assert seen["metadata"]["name"] == rayjob["metadata"]["name"]
    assert [c["metadata"]["name"] for c in indexes.children(("team", "s"))] == ["t-0"]
    assert indexes.experiment(("team", "other")) is None


def test_entries_of_a_trial_stay_under_3_kib() -> None:
    """Index memory per trial (experiment, trial and RayJob entries): the raw bodies
    cost about 39 KiB per trial, the slim dicts 15 KiB; the bound is 3 KiB."""
    trials = [stored_trial(i) for i in range(200)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = [
            (experiment_entry(kopf.Body(b)), trial_entry(kopf.Body(b)),
             rayjob_entry(kopf.Body(r)))
            for b, r in trials
        ]  # fmt: skip
        del trials
        gc.collect()
        per_trial = (tracemalloc.get_traced_memory()[0] - base) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_trial < 3 * 1024, f"{per_trial:.0f} bytes per trial"
