"""What the operator costs the Kubernetes API: requests per trial and per sweep, bytes kept
in annotations, and how fast a 1,000-trial sweep fans out.

    .venv/bin/python bench/bench_operator.py [--trials 20] [--fanout 1000]

Runs the API server emulator of the test bed in this process, with every request counted
by method and resource (the bench's own requests carry a User-Agent that is not counted),
and `rlops operator` as a real process against it. No KubeRay stand-in runs: the bench
plays KubeRay itself, writing each RayJob's status (Initializing, Running, Complete) and
POSTing one progress record and the final result per trial to the operator, so every
trial goes through the full lifecycle without training.

Figures:
1. API requests the operator makes per trial lifecycle (sweep of --trials trials,
   parallelism = trials), split by verb and resource, and the constant per sweep;
2. bytes of annotations and finalizers the operator leaves on each object (kopf keeps
   none: no last-handled-configuration, no progress annotations);
3. children (RLExperiments) and RayJobs created per second when a --fanout-trial sweep
   (parallelism = fanout) fans out;
4. the emulator's own capacity in the same run: RLExperiment creates per second from
   several concurrent clients with no operator watching (`emulator_writes_per_s`), the
   ceiling any fan-out figure measured against it is under;
5. the operator's resident memory (VmRSS and its peak, VmHWM) once it has loaded
   --rss-trials running trials (RLExperiments of a sweep with their RayJobs, stored as the
   API server keeps them, managedFields included) and handled every one of them: stored
   while the operator runs (a sweep growing), or with --rss-restart before it starts
   (kopf's initial listing: every object's worker waits until all are indexed, and each
   one indexed wakes every waiting worker, so this start-up is quadratic in objects).

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
requests_per_trial, fanout_trials_per_s, fanout_rayjobs_per_s, emulator_writes_per_s,
operator_rss_mib_at_20000 (at --rss-trials, 20,000 by default), operator_peak_rss_mib.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_indexes import trial  # noqa: E402
from figures import add_json_argument, write_json  # noqa: E402

from rlops.backends.kuberay import progress_token  # noqa: E402
from tests.kube import apiserver  # noqa: E402
from tests.kube.fixtures import KubeTestBed, crd_files  # noqa: E402
from tests.operator.harness import SECRET, OperatorProcess  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

BENCH_AGENT = "rlops-bench"
COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()


def count_requests() -> Callable[[], None]:
    """Count every request the emulator serves that does not come from this bench, into
    COUNTS; the function returned stops counting."""
    original = apiserver.ApiServer.handle

    async def handle(self: apiserver.ApiServer, request: Any) -> Any:
        if request.headers.get("User-Agent") != BENCH_AGENT:
            parts = [p for p in request.path.split("/") if p]
            plural = next((p for p in reversed(parts) if p.endswith("s") and p != "status"), "?")
            watch = request.query.get("watch") in ("true", "1")
            verb = "WATCH" if watch else request.method
            if parts and parts[-1] == "status":
                plural += "/status"
            COUNTS[(verb, plural)] += 1
        return await original(self, request)

    apiserver.ApiServer.handle = handle  # type: ignore[method-assign]

    def stop() -> None:
        apiserver.ApiServer.handle = original  # type: ignore[method-assign]

    return stop


class Api:
    """The bench's own client (not counted)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None, content: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"User-Agent": BENCH_AGENT, "Content-Type": content or "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def items(self, namespace: str, group: str, plural: str, selector: str = "") -> list[Any]:
        query = f"?labelSelector={selector}" if selector else ""
        path = f"/apis/{group}/namespaces/{namespace}/{plural}{query}"
        return list(self.call("GET", path)["items"])


def sweep_manifest(name: str, trials: int) -> dict[str, Any]:
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "Sweep",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "algorithm": "PPO",
                "environment": {"id": "CartPole-v1"},
                "stop": {"timesteps": 1000},
                "placement": {"backend": "kubernetes"},
            },
            "parameters": {"config.training.lr": {"type": "loguniform", "low": 1e-5, "high": 1e-2}},
            "algorithm": "random",
            "maxTrials": trials,
            "parallelism": trials,
        },
    }


def play_kuberay(
    api: Api, operator: OperatorProcess, namespace: str, rayjob: dict[str, Any]
) -> None:
    """Take one RayJob through KubeRay's lifecycle, with one progress record and a result."""
    meta = rayjob["metadata"]
    path = f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs/{meta['name']}/status"
    patch = "application/merge-patch+json"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for deployment, job in (("Initializing", ""), ("Running", "RUNNING")):
        status = {"jobDeploymentStatus": deployment, "jobStatus": job, "startTime": now}
        api.call("PATCH", path, {"status": status}, patch)
    experiment = meta["labels"]["rlops.dev/experiment"]
    owner = meta["ownerReferences"][0]["uid"]
    token = progress_token(SECRET, namespace, experiment, owner)
    url = f"http://127.0.0.1:{operator.progress_port}/progress/{namespace}/{experiment}"
    record = {"iteration": 1, "timesteps": 1000, "time_seconds": 1.0, "timestamp": time.time(),
              "episode_return_mean": 20.0}  # fmt: skip
    result = {"status": "succeeded", "exit_code": 0, "iteration": 1, "timesteps": 1000,
              "episode_return_mean": 20.0}  # fmt: skip
    for target, body in ((url, record), (url + "?final=1", result)):
        request = urllib.request.Request(
            target, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(request, timeout=30).read()
    status = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": now}
    api.call("PATCH", path, {"status": status}, patch)


def lifecycle(kube: KubeTestBed, api: Api, workdir: Path, trials: int) -> dict[str, Any]:
    namespace = kube.create_namespace("bench-life")
    operator = OperatorProcess(kube, namespace, workdir / "life", status_flush_seconds=0.5)
    (workdir / "life").mkdir()
    operator.start()
    try:
        wait_until(lambda: time.sleep(2) or True, 10, "the operator to settle", interval=0.5)
        COUNTS.clear()
        api.call("POST", f"/apis/rlops.dev/v1alpha1/namespaces/{namespace}/sweeps",
                 sweep_manifest("life", trials))  # fmt: skip
        played: set[str] = set()

        def all_played() -> bool:
            for rayjob in api.items(namespace, "ray.io/v1", "rayjobs"):
                if rayjob["metadata"]["name"] not in played:
                    played.add(rayjob["metadata"]["name"])
                    play_kuberay(api, operator, namespace, rayjob)
            return len(played) == trials

        wait_until(all_played, 300, "every RayJob to be played", interval=0.5)
        path = f"/apis/rlops.dev/v1alpha1/namespaces/{namespace}/sweeps/life"
        wait_until(
            lambda: (api.call("GET", path).get("status") or {}).get("phase") == "Succeeded",
            300,
            "the sweep to succeed",
            interval=0.5,
        )
        time.sleep(3)  # let trailing writes land before counting
        counts = dict(COUNTS)
        objects = {
            "Sweep": [api.call("GET", path)],
            "RLExperiment": api.items(namespace, "rlops.dev/v1alpha1", "rlexperiments"),
            "RayJob": api.items(namespace, "ray.io/v1", "rayjobs"),
        }
    finally:
        operator.stop()
    return {"counts": counts, "objects": objects}


def kept_bytes(obj: dict[str, Any]) -> dict[str, int]:
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    kopf_keys = {k: v for k, v in annotations.items() if "kopf" in k}
    return {
        "annotations": len(json.dumps(annotations, separators=(",", ":"))) if annotations else 0,
        "kopf_annotations": len(json.dumps(kopf_keys, separators=(",", ":"))) if kopf_keys else 0,
        "finalizers": len(json.dumps(meta.get("finalizers") or []))
        if meta.get("finalizers")
        else 0,
    }


def fanout(kube: KubeTestBed, api: Api, workdir: Path, trials: int) -> dict[str, float]:
    namespace = kube.create_namespace("bench-fanout")
    operator = OperatorProcess(kube, namespace, workdir / "fanout")
    (workdir / "fanout").mkdir()
    operator.start()
    try:
        start = time.monotonic()
        api.call("POST", f"/apis/rlops.dev/v1alpha1/namespaces/{namespace}/sweeps",
                 sweep_manifest("fan", trials))  # fmt: skip
        times: dict[str, float] = {}

        def created() -> bool:
            if "children" not in times:
                if len(api.items(namespace, "rlops.dev/v1alpha1", "rlexperiments")) >= trials:
                    times["children"] = time.monotonic() - start
            elif len(api.items(namespace, "ray.io/v1", "rayjobs")) >= trials:
                times["rayjobs"] = time.monotonic() - start
            return "rayjobs" in times

        wait_until(created, 900, f"{trials} children and RayJobs", interval=1.0)
    finally:
        operator.stop()
    return {
        "children_seconds": times["children"],
        "children_per_second": trials / times["children"],
        "rayjobs_seconds": times["rayjobs"],
        "rayjobs_per_second": trials / times["rayjobs"],
    }


def emulator_writes(api: Api, kube: KubeTestBed, writes: int, clients: int = 8) -> float:
    """RLExperiment creates per second the emulator serves from `clients` threads."""
    namespace = kube.create_namespace("bench-writes")
    body = sweep_manifest("w", 1)["spec"]["template"]
    path = f"/apis/rlops.dev/v1alpha1/namespaces/{namespace}/rlexperiments"

    def create(i: int) -> None:
        manifest = {"apiVersion": "rlops.dev/v1alpha1", "kind": "RLExperiment",
                    "metadata": {"name": f"w-{i}"}, "spec": body}  # fmt: skip
        api.call("POST", path, manifest)

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(create, range(writes)))
    return writes / (time.monotonic() - start)


def seed(emulator: apiserver.Emulator, namespace: str, trials: int) -> None:
    """Store `trials` running trials and their RayJobs straight into the emulator."""
    store = emulator.store
    assert store is not None and emulator._loop is not None

    async def write() -> None:
        kinds = {
            "RLExperiment": store.type_of("rlops.dev", "rlexperiments"),
            "RayJob": store.type_of("ray.io", "rayjobs"),
        }
        for i in range(trials):
            for body in trial(i):
                body["metadata"]["namespace"] = namespace
                kind = kinds[body["kind"]]
                status = body.pop("status")
                stored = store.create(kind, namespace, body)
                stored["status"] = status
                store.update(kind, namespace, stored["metadata"]["name"], stored, "status")
            if i % 50 == 0:  # let the emulator serve meanwhile (watch events included)
                await asyncio.sleep(0.005)

    asyncio.run_coroutine_threadsafe(write(), emulator._loop).result(timeout=1800)


def handled(operator: OperatorProcess) -> int:
    """Objects the operator has handled so far: its log's handler successes, counted."""
    try:
        text = operator.log_path.read_text(errors="replace")
    except OSError:
        return 0
    return text.count("_event' succeeded")


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def operator_rss(
    emulator: apiserver.Emulator, kube: KubeTestBed, workdir: Path, trials: int, live: bool
) -> dict[str, float]:
    """The operator's memory once it holds `trials` trials. `live`: the operator runs first
    and the trials arrive while it watches (a sweep growing); else they exist before it
    starts (a restart: kopf's initial listing)."""
    namespace = kube.create_namespace("bench-rss")
    operator = OperatorProcess(kube, namespace, workdir / "rss")
    (workdir / "rss").mkdir()
    if live:
        operator.start()
    start = time.monotonic()
    seed(emulator, namespace, trials)
    seeded = time.monotonic() - start
    if not live:
        operator.start()
    try:
        start = time.monotonic()
        counts: list[int] = []

        def loaded() -> bool:
            count = handled(operator)
            if int(time.monotonic() - start) % 60 < 2:
                print(f"  ... {count} handler runs for {2 * trials} objects", flush=True)
            counts.append(count)
            # every object handled once (restart), or no handler run for 10 s (live: each
            # object's ADDED and status events may be handled once or twice)
            return count >= 2 * trials and (not live or counts[-6:] == [count] * 6)

        wait_until(loaded, 3600, f"the operator to handle {trials} trials and their RayJobs",
                   interval=2.0, max_interval=2.0)  # fmt: skip
        loaded = time.monotonic() - start
        assert operator.process is not None
        memory = memory_kib(operator.process.pid)
    finally:
        operator.stop()
    return {"seed_seconds": seeded, "load_seconds": loaded,
            "rss_mib": memory["VmRSS"] / 1024, "peak_rss_mib": memory["VmHWM"] / 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=2000, help="creates to time the emulator")
    parser.add_argument("--rss-trials", type=int, default=20000, help="0 skips the RSS figure")
    parser.add_argument(
        "--rss-restart",
        action="store_true",
        help="trials exist before the operator starts (kopf's initial listing)",
    )
    add_json_argument(parser)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    count_requests()
    emulator = apiserver.Emulator(crd_files()).start()
    with tempfile.TemporaryDirectory(prefix="rlops-bench-") as tmp:
        workdir = Path(tmp)
        kubeconfig = emulator.write_kubeconfig(workdir / "kubeconfig")
        kube = KubeTestBed(kubeconfig, emulator.url, workdir)
        api = Api(emulator.url)

        life = lifecycle(kube, api, workdir, args.trials)
        counts = life["counts"]
        total = sum(counts.values())
        print(f"== API requests by the operator for a {args.trials}-trial sweep "
              f"(full lifecycle of every trial)")  # fmt: skip
        for (verb, plural), n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {verb:6} {plural:28} {n:5}  ({n / args.trials:.2f} per trial)")
        print(f"  total {total} = {total / args.trials:.2f} per trial")
        figures["requests_per_trial"] = total / args.trials

        print("== bytes kept in metadata per object (annotations incl. rlops', kopf's, finalizers)")
        for kind, objects in life["objects"].items():
            sizes = [kept_bytes(o) for o in objects]
            mean = (
                {k: sum(s[k] for s in sizes) / max(len(sizes), 1) for k in sizes[0]}
                if sizes
                else {}
            )
            print(
                f"  {kind:13} n={len(sizes):4} " + " ".join(f"{k}={v:.0f}" for k, v in mean.items())
            )

        if args.fanout:
            fan = fanout(kube, api, workdir, args.fanout)
            print(f"== fan-out of a {args.fanout}-trial sweep (parallelism {args.fanout})")
            print(
                f"  children: {fan['children_seconds']:.1f}s = {fan['children_per_second']:.1f}/s"
            )
            print(f"  RayJobs:  {fan['rayjobs_seconds']:.1f}s = {fan['rayjobs_per_second']:.1f}/s")
            figures["fanout_trials_per_s"] = fan["children_per_second"]
            figures["fanout_rayjobs_per_s"] = fan["rayjobs_per_second"]

        if args.writes:
            writes = emulator_writes(api, kube, args.writes)
            print(f"== the emulator alone: {writes:.1f} RLExperiment creates/s "
                  f"({args.writes} from 8 clients, no operator watching)")  # fmt: skip
            figures["emulator_writes_per_s"] = writes

        if args.rss_trials:
            rss = operator_rss(emulator, kube, workdir, args.rss_trials, not args.rss_restart)
            how = "stored before it started" if args.rss_restart else "arriving while it ran"
            print(f"== operator memory with {args.rss_trials} trials and their RayJobs ({how}; "
                  f"stored in {rss['seed_seconds']:.0f}s, "
                  f"all handled {rss['load_seconds']:.0f}s later)")  # fmt: skip
            print(f"  VmRSS {rss['rss_mib']:.0f} MiB, peak {rss['peak_rss_mib']:.0f} MiB")
            figures["operator_rss_mib_at_20000"] = rss["rss_mib"]
            figures["operator_peak_rss_mib"] = rss["peak_rss_mib"]
            figures["rss_trials"] = args.rss_trials
            figures["rss_mode"] = "restart" if args.rss_restart else "live"
    emulator.stop()
    write_json(args.json, "bench_operator", figures)


if __name__ == "__main__":
    main()
