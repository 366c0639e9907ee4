"""Tracking jobs when squeue cannot tell: on the real SLURM cluster.

Covers: a CLI client whose squeue is missing or broken (a `bin_dir` with the real sbatch,
scontrol, scancel and sacct) observing and finding jobs with one `scontrol -o show job` per
poll, with the same states, exit codes and signals squeue gives; a second cluster with
MinJobAge=2 where slurmctld really forgets a finished job and the bridge still reaches the
right phase through one batched `sacct --completion` (the job completion log: this cluster
keeps no accounting database, no slurmdbd); the sacct parser on the accounting format of
sacct's manual (`CANCELLED by 0`, `exit:signal`), which the test cluster cannot produce.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlops.backends.slurm import CliSlurmClient, SlurmBackend, SlurmSettings
from rlops.backends.slurm.parsers import parse_sacct, parse_scontrol
from rlops.slurm_bridge.bridge import SlurmBridge
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import KubeExperimentStore
from tests.kube.fixtures import KubeTestBed
from tests.slurm.slurm_cluster import SlurmCluster, running_cluster
from tests.slurm.test_bridge import GROUP, PLURAL, VERSION, waiting
from tests.slurm.test_clients import await_job, script
from tests.waiting import wait_until

pytestmark = pytest.mark.slurm
REAL = ("sbatch", "scontrol", "scancel", "sacct")


def bin_dir(tmp_path: Path, squeue: str | None) -> Path:
    """The real SLURM commands, with squeue missing (None) or replaced by `squeue`."""
    path = tmp_path / "bin"
    path.mkdir()
    for name in REAL:
        (path / name).symlink_to(f"/usr/bin/{name}")
    if squeue is not None:
        (path / "squeue").write_text(squeue)
        (path / "squeue").chmod(0o755)
    return path


BROKEN = "#!/bin/sh\necho 'squeue: error: Invalid --format specification' >&2\nexit 1\n"


@pytest.mark.parametrize("squeue", [None, BROKEN], ids=["missing", "broken"])
def test_scontrol_observes_jobs_when_squeue_is_unusable(
    squeue: str | None,
    slurm_settings: SlurmSettings,
    slurm_cluster: SlurmCluster,
    cli_client: CliSlurmClient,
    tmp_path: Path,
) -> None:
    settings = slurm_settings.model_copy(update={"bin_dir": bin_dir(tmp_path, squeue)})
    calls: list[str] = []
    client = CliSlurmClient(settings, lambda c, s, ok: calls.append(c), env=slurm_cluster.env)
    held_name = f"rlops-scontrol-held-{'missing' if squeue is None else 'broken'}"
    held = client.submit(script("true", held_name, tmp_path), hold=True,
                         comment="rlops-uid=u,attempt=2")  # fmt: skip
    fails = client.submit(script("exit 3", "rlops-scontrol-fails", tmp_path))
    killed = client.submit(script("kill -9 $$", "rlops-scontrol-killed", tmp_path))
    await_job(cli_client, fails, lambda j: j.state == "FAILED")
    await_job(cli_client, killed, lambda j: j.state == "FAILED")

    calls.clear()
    seen = client.jobs([held, fails, killed])
    assert calls == ["squeue", "scontrol"] and client.squeue_broken
    calls.clear()
    assert client.jobs([held, fails, killed]) == seen
    assert calls == ["scontrol"]  # remembered: one command per poll, however many jobs
    reference = cli_client.jobs([held, fails, killed])  # what squeue says of the same jobs
    for job_id in (held, fails, killed):
        ours, theirs = seen[job_id], reference[job_id]
        assert (ours.state, ours.exit_code, ours.signal, ours.name, ours.comment) == (
            theirs.state, theirs.exit_code, theirs.signal, theirs.name, theirs.comment
        ), job_id  # fmt: skip
    assert seen[held].comment == "rlops-uid=u,attempt=2" and "Held" in seen[held].reason
    assert (seen[fails].exit_code, seen[killed].signal) == (3, 9)
    assert [j.job_id for j in client.find_by_name(held_name)] == [held]
    client.cancel(held)


@pytest.fixture(scope="module")
def forgetful_cluster() -> Iterator[SlurmCluster]:
    """A second cluster whose slurmctld forgets a finished job after 2 s (MinJobAge=2)."""
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("the test cluster's daemons run as root")
    with running_cluster(min_job_age=2) as cluster:
        yield cluster


def forgotten(cluster: SlurmCluster, job_id: str) -> bool:
    return "invalid job id" in cluster.run("squeue", "-h", f"--jobs={job_id}").stderr.lower()


@pytest.mark.e2e
def test_bridge_reaches_the_phase_of_a_job_slurmctld_forgot(
    forgetful_cluster: SlurmCluster,
    kube: KubeTestBed,
    kube_namespace: str,
    slurm_settings: SlurmSettings,
) -> None:
    import kubernetes.client

    calls: list[str] = []
    client = CliSlurmClient(slurm_settings, lambda c, s, ok: calls.append(c),
                            env=forgetful_cluster.env)  # fmt: skip
    with kube.api_client() as api_client:
        api = kubernetes.client.CustomObjectsApi(api_client)
        body = waiting("forgotten").set("metadata.namespace", kube_namespace).obj()
        api.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
        bridge = SlurmBridge(
            KubeExperimentStore(api),
            SlurmBackend(client, slurm_settings),
            BridgeSettings(cluster="hpc", namespaces=[kube_namespace], bridge_id="test"),
        )

        def status() -> dict[str, object]:
            got = api.get_namespaced_custom_object(
                GROUP, VERSION, kube_namespace, PLURAL, "forgotten"
            )
            return dict(got.get("status") or {})

        bridge.poll()
        job_id = str(status()["backendRef"]["jobId"])  # type: ignore[index]
        assert status()["phase"] == "Submitted"
        # Cancelled while the bridge is away, and purged before it looks again: squeue no
        # longer knows the job, and it left no result.json (it never ran).
        assert forgetful_cluster.run("scancel", job_id).returncode == 0
        # slurmctld purges old jobs about once a minute
        wait_until(lambda: forgotten(forgetful_cluster, job_id), 150, "slurmctld to forget the job")
        calls.clear()
        bridge.poll()
        final = status()
    assert calls == ["squeue", "sacct", "sacct"]  # no accounting database: the completion log
    assert client.sacct_mode == "completion"
    assert final["phase"] == "Stopped"  # with result.json alone it would be Failed
    assert final["message"] == f"job {job_id} cancelled outside rlops (scancel)"
    assert final["completedAt"]


def test_sacct_parser_reads_the_accounting_format() -> None:
    # `sacct -X -P -n --format=JobIDRaw,State,Reason,ExitCode,Submit,Start,End,NodeList,
    # Comment,JobName` on a cluster with slurmdbd, as sacct's manual describes its fields.
    output = (
        "4107|CANCELLED by 0|None|0:15|2024-03-01T10:00:00|2024-03-01T10:00:05|"
        "2024-03-01T10:20:00|node[01-02]|rlops-uid=abc,attempt=2|rlops-a-abc12345\n"
        "4108|OUT_OF_MEMORY|None|0:125|2024-03-01T10:00:00|2024-03-01T10:01:00|"
        "2024-03-01T10:09:00|node03||rlops-b|x\n"
        "4109|PENDING|Priority|0:0|2024-03-01T10:00:00|Unknown|Unknown|None assigned||w\n"
    )
    jobs = {j.job_id: j for j in parse_sacct(output)}
    assert jobs["4107"].state == "CANCELLED" and jobs["4107"].signal == 15
    assert jobs["4107"].comment == "rlops-uid=abc,attempt=2" and jobs["4107"].nodes == "node[01-02]"
    assert jobs["4108"].state == "OUT_OF_MEMORY" and jobs["4108"].name == "rlops-b|x"
    assert jobs["4109"].start_time is None and jobs["4109"].reason == "Priority"
    assert parse_scontrol("No jobs in the system\n") == []
