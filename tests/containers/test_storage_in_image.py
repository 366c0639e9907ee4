"""Storage that outlives a RayJob, end to end in the image: `rlops operator` (a real process)
turns Sweeps applied with kubectl into trials and RayJobs whose head pods the KubeRay
stand-in runs as podman containers of the image. The trials name a PersistentVolumeClaim in
`spec.storage.persistentVolumeClaim` (the operator has none): every head pod mounts it at
the storage path, the stand-in backing the claim with one host directory. Or they keep
their run directories in `s3://` (moto's S3 server on loopback, which the containers reach
on the host network), with credentials and endpoint from the operator's storage Secret.

- a trial whose head container is SIGKILLed mid-run, once it has checkpointed, fails; the
  sweep retries it as attempt 2 in a new RayJob, a new container, which resumes from the
  checkpoint on the claim (or in the bucket): iterations and timesteps go on from there;
- an ASHA promotion sweep's trials, told their rung (`rlops.dev/pause-at`), end there by
  themselves and are Paused (the RayJob deleted, the pod gone); the promoted ones resume
  from the rung's checkpoint on the claim in a new RayJob and end at the next rung.

Real: the operator, kubectl, podman, the image, RLlib. The Kubernetes API is the test bed's
emulator; the KubeRay operator is the stand-in; the claim is a host directory; S3 is moto.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlops.api.annotations import ANNOTATION_PAUSE_AT, ANNOTATION_PROMOTIONS
from rlops.api.runinfo import ProgressRecord, read_progress, read_result
from rlops.runtime.checkpoints import METADATA_FILE, checkpoint_name
from rlops.runtime.storage import StoreMirror
from tests.kube.fixtures import KubeTestBed
from tests.kube.pod_containers import PodmanPods
from tests.kube.volume_claims import claim as volume_claim
from tests.operator.harness import OperatorProcess, get, names, status_of
from tests.operator.test_operator_e2e import apply
from tests.storage.s3server import S3Server
from tests.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.training]

CLAIM = "team-runs"
STORAGE_SECRET = "bucket-creds"  # the operator's RLOPS_STORAGE_SECRET
BATCH = 2000  # iterations of seconds: a kill or a pause lands before a trial could end
ASHA_ITERATIONS = 4
RUNGS = (1, 2)  # gracePeriod 1, reductionFactor 2, below 4 iterations
RESUMED = re.compile(r"resuming from \S+ \(iteration (\d+)\)")


@pytest.fixture
def operator(
    kube: KubeTestBed, kube_namespace: str, image: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        kube, kube_namespace, tmp_path, image=image, storage_secret=STORAGE_SECRET
    )
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture
def claim(
    kube: KubeTestBed, kube_namespace: str, kuberay: Any, podman_settings: dict[str, str],
    operator: OperatorProcess, tmp_path: Path,
) -> Iterator[tuple[Path, PodmanPods]]:  # fmt: skip
    """The claim's host directory, with the stand-in running head pods as containers."""
    if not getattr(kuberay, "emulated", False):
        pytest.skip("container mode is the stand-in's (a real cluster runs real pods)")
    storage = operator.workdir / "runs"
    pods = PodmanPods(podman_settings, tmp_path / "pods", claims={CLAIM: storage})
    kuberay.run_in_containers(kube_namespace, pods)
    apply(kube, kube_namespace, volume_claim(CLAIM))  # pods mounting a missing claim never start
    try:
        yield storage, pods
    finally:
        kuberay.run_in_containers(kube_namespace, None)


def sweep(
    name: str, lrs: list[float], iterations: int, storage: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:  # fmt: skip
    """A grid over PPO's learning rate on CartPole; trials checkpoint every iteration."""
    template = {
        "algorithm": "PPO",
        "environment": {"id": "CartPole-v1"},
        "config": {
            "training": {"train_batch_size_per_learner": BATCH, "minibatch_size": 250,
                         "num_epochs": 2},
            "rl_module": {"model_config": {"fcnet_hiddens": [32, 32]}},
        },
        "resources": {"envRunners": 0},
        "stop": {"iterations": iterations},
        "checkpoint": {"frequency": 1},
        "seed": 1,
        "placement": {"backend": "kubernetes"},
        "storage": storage or {"persistentVolumeClaim": CLAIM},
    }  # fmt: skip
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "Sweep",
        "metadata": {"name": name},
        "spec": {
            "template": template,
            "parameters": {"config.training.lr": {"type": "grid", "values": lrs}},
            "algorithm": "grid",
            "objective": {"metric": "episode_return_mean", "mode": "max"},
            **spec,
        },
    }


def finished_phase(kube: KubeTestBed, ns: str, name: str) -> str | None:
    """The sweep's final phase; a failed one with its trials' phases and messages."""
    status = status_of(kube, "sweep", ns, name)
    phase = status.get("phase")
    if phase == "Failed":
        trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
        said = [(t, status_of(kube, "rlx", ns, t).get("message")) for t in trials]
        return f"Failed: {status.get('message')} {said}"
    return phase if phase == "Succeeded" else None


def launches(run_dir: Path) -> dict[int, list[ProgressRecord]]:
    """Progress records by the runtime's launch number (its attempt)."""
    out: dict[int, list[ProgressRecord]] = {}
    for record in read_progress(run_dir):
        out.setdefault(record.attempt, []).append(record)
    return out


def resumed_from(run_dir: Path, launch: int) -> int:
    """The checkpoint iteration launch `launch` resumed from, as its log says."""
    log = (run_dir / "attempts" / f"{launch}.log").read_text()
    found = RESUMED.search(log)
    assert found, f"launch {launch} did not resume:\n{log[-3000:]}"
    return int(found.group(1))


def assert_went_on(run_dir: Path, launch: int, last_iteration: int) -> None:
    """Launch `launch` resumed from a checkpoint of the claim and counted on from it."""
    start = resumed_from(run_dir, launch)
    assert start >= 1 and (run_dir / "checkpoints").is_dir()
    records = launches(run_dir)[launch]
    expected = range(start + 1, last_iteration + 1)
    assert [r.iteration for r in records] == list(expected)
    assert [r.timesteps for r in records] == [i * BATCH for i in expected]


class Store:
    """Where a test's trials keep their run directories: the claim, or a bucket of the S3
    server (pulled into a local directory to be read)."""

    def __init__(self, storage: Path, s3: S3Server | None, bucket: str, scratch: Path) -> None:
        self.storage, self.s3, self.bucket, self.scratch = storage, s3, bucket, scratch
        self.pulls = 0

    @property
    def spec(self) -> dict[str, Any]:
        if self.s3 is None:
            return {"persistentVolumeClaim": CLAIM}
        return {"path": f"s3://{self.bucket}/runs"}

    def has_checkpoint(self, ns: str, trial: str, iteration: int) -> bool:
        rel = f"{ns}/{trial}/checkpoints/{checkpoint_name(iteration)}/{METADATA_FILE}"
        if self.s3 is None:
            return (self.storage / rel).is_file()
        return f"{self.bucket}/runs/{rel}" in self.s3.files(f"{self.bucket}/runs/{ns}/{trial}")

    def run_dir(self, ns: str, trial: str) -> Path:
        if self.s3 is None:
            return self.storage / ns / trial
        self.pulls += 1
        local = self.scratch / f"pull-{self.pulls}"
        StoreMirror(f"s3://{self.bucket}/runs/{ns}/{trial}", local).pull()
        return local


@pytest.mark.parametrize("where", ["claim", "s3"])
def test_a_killed_trial_is_retried_as_attempt_2_from_its_checkpoint(
    kube: KubeTestBed, kube_namespace: str, claim: tuple[Path, PodmanPods], where: str,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:  # fmt: skip
    storage, pods = claim
    ns, name = kube_namespace, "retry"
    store = Store(storage, None, "", tmp_path)
    if where == "s3":  # moto on loopback, reached from the container (host network)
        s3: S3Server = request.getfixturevalue("s3")
        store = Store(storage, s3, request.getfixturevalue("bucket"), tmp_path)
        data = {k: base64.b64encode(v.encode()).decode() for k, v in s3.env.items()}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": STORAGE_SECRET},
                  "data": data}  # fmt: skip
        apply(kube, ns, secret)
    started = time.monotonic()
    apply(kube, ns, sweep(name, [0.0003], iterations=6, storage=store.spec, maxAttempts=2))
    trials = lambda: names(kube, "rlx", ns, f"rlops.dev/sweep={name}")  # noqa: E731
    trial = wait_until(trials, 60, "the trial", interval=0.5)[0]
    checkpointed = lambda: store.has_checkpoint(ns, trial, 2)  # noqa: E731
    wait_until(checkpointed, 420, "checkpoint 2 in the store", interval=1.0)
    rayjob = get(kube, "rayjobs", ns, trial)
    assert rayjob is not None
    head = f"{ns}-{rayjob['status']['rayClusterName']}-head"
    kill = subprocess.run(["podman", "kill", "--signal=KILL", head], env=pods.env,
                          capture_output=True, text=True)  # fmt: skip
    running = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}} {{.Status}}"],
                             env=pods.env, capture_output=True, text=True).stdout  # fmt: skip
    assert kill.returncode == 0, f"podman kill {head}: {kill.stderr}\n{running}"
    killed = time.monotonic()

    finished = lambda: finished_phase(kube, ns, name)  # noqa: E731
    assert wait_until(finished, 600, "the sweep to finish", interval=2.0) == "Succeeded"
    done = time.monotonic()
    status = status_of(kube, "rlx", ns, trial)
    assert (status["phase"], status["attempts"]) == ("Succeeded", 2), status
    assert status["progress"]["iteration"] == 6
    assert status["progress"]["timesteps"] == 6 * BATCH
    run_dir = store.run_dir(ns, trial)
    result = read_result(run_dir)
    assert result is not None and result.runtime is not None
    assert (result.status, result.attempt, result.iteration) == ("succeeded", 2, 6)
    assert result.runtime.hostname.endswith("-head")  # trained in a head pod's container
    assert sorted(launches(run_dir)) == [1, 2]
    assert_went_on(run_dir, 2, 6)
    print(f"{where}: killed at {killed - started:.0f} s, retried and finished "
          f"{done - killed:.0f} s later")  # fmt: skip


def test_an_asha_promotion_sweep_resumes_its_paused_trials_from_their_checkpoints(
    kube: KubeTestBed, kube_namespace: str, claim: tuple[Path, PodmanPods]
) -> None:
    storage, _ = claim
    ns, name = kube_namespace, "asha"
    started = time.monotonic()
    # Rungs at 1 and 2 of 4 iterations. Each trial is told its rung (rlops.dev/pause-at ->
    # RLOPS_PAUSE_AT_ITERATION) and ends there by itself, checkpointed: no trial runs past
    # its rung however fast it is, so the budget need leave no room for a late pause.
    asha = {"type": "asha", "variant": "promotion", "gracePeriod": 1, "reductionFactor": 2,
            "maxIterations": ASHA_ITERATIONS}  # fmt: skip
    apply(kube, ns, sweep(name, [0.0003, 0.003, 0.03], iterations=ASHA_ITERATIONS, parallelism=3,
                          earlyStopping=asha))  # fmt: skip
    finished = lambda: finished_phase(kube, ns, name)  # noqa: E731
    assert wait_until(finished, 600, "the sweep to finish", interval=2.0) == "Succeeded"
    elapsed = time.monotonic() - started
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert len(trials) == 3
    promoted = {}
    for trial in trials:
        body = get(kube, "rlx", ns, trial)
        assert body is not None
        annotations = body["metadata"].get("annotations", {})
        count = int(annotations.get(ANNOTATION_PROMOTIONS, "0"))
        runs = launches(storage / ns / trial)
        assert runs, f"{trial} never trained"
        # The first run ended at the first rung, by itself: not one iteration past it.
        assert [r.iteration for r in runs[1]] == [1], (trial, runs[1])
        if count:
            promoted[trial] = count
            # Paused at each rung (its RayJob and pod deleted), resumed in a new RayJob that
            # read the rung's checkpoint from the claim and ran to the next rung.
            ends = (*RUNGS, ASHA_ITERATIONS)  # where launch n ends: ends[n - 1]
            assert sorted(runs) == list(range(1, count + 2)), (trial, sorted(runs))
            for launch in sorted(runs)[1:]:
                start = resumed_from(storage / ns / trial, launch)
                assert start == ends[launch - 2], (trial, launch, start)
                expected = list(range(start + 1, ends[launch - 1] + 1))
                assert [r.iteration for r in runs[launch]] == expected, (trial, launch)
                assert [r.timesteps for r in runs[launch]] == [i * BATCH for i in expected]
        else:
            assert annotations.get(ANNOTATION_PAUSE_AT) == str(RUNGS[0]) and len(runs) == 1
    assert promoted, "no trial was promoted"
    best = max(promoted, key=promoted.__getitem__)
    assert max(r.iteration for r in read_progress(storage / ns / best)) == ASHA_ITERATIONS
    body = get(kube, "rlx", ns, best)
    assert body is not None and ANNOTATION_PAUSE_AT not in body["metadata"]["annotations"]
    print(f"ASHA promotion sweep: promotions {sorted(promoted.values())}, "
          f"finished in {elapsed:.0f} s")  # fmt: skip
