"""A real Prometheus for tests: `prometheus(targets)` starts the Debian binary
scraping `targets` every second and answers PromQL through its HTTP API.

Any test can use it: `from tests.metrics.prom import prometheus  # noqa: F401`
imports the fixture; `prom = prometheus(["127.0.0.1:8080"])` starts one, and
`prom.await_query(expr, lambda r: ...)` polls an instant query until the
condition holds or a deadline passes.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.waiting import wait_until

Result = list[dict[str, Any]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A running Prometheus and a thin client of its HTTP API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> Result:
        """An instant PromQL query: the vector's samples (`metric` labels, `value`)."""
        data = self.api("query", query=expr)
        result: Result = data["result"]
        return result

    def await_query(
        self, expr: str, condition: Callable[[Result], bool], timeout: float = 30.0
    ) -> Result:
        """Poll `expr` until `condition(result)` holds; fail with the last result."""
        last: list[Result] = [[]]

        def met() -> bool:
            last[0] = self.query(expr)
            return condition(last[0])

        try:
            wait_until(met, timeout, f"{expr!r} to meet the condition", interval=0.25)
        except AssertionError:
            pytest.fail(f"{expr!r} did not meet the condition within {timeout}s; last: {last[0]}")
        return last[0]

    def await_value(self, expr: str, expected: float, timeout: float = 30.0) -> None:
        """Poll until `expr` is one sample equal to `expected`."""
        self.await_query(expr, lambda r: values(r) == [expected], timeout)

    def await_rules_evaluated(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every loaded rule once evaluated; the rules as /api/v1/rules lists them."""

        def evaluated() -> list[dict[str, Any]]:
            rules = [r for g in self.api("rules")["groups"] for r in g["rules"]]
            done = rules and all(not r["lastEvaluation"].startswith("0001") for r in rules)
            return rules if done else []

        rules: list[dict[str, Any]] = wait_until(
            evaluated, timeout, "every rule to be evaluated once", interval=0.25
        )
        return rules

    def await_targets_up(self, timeout: float = 30.0) -> None:
        self.await_query("up", lambda r: bool(r) and all(values(r)), timeout)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def values(result: Result) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


def by_label(result: Result, label: str) -> dict[str, float]:
    return {s["metric"][label]: float(s["value"][1]) for s in result}


def start_prometheus(
    targets: Sequence[str], workdir: Path, rule_files: Sequence[Path] = ()
) -> Prometheus:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus (Debian package prometheus) is not installed: run scripts/setup.sh")
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": "rlops", "static_configs": [{"targets": list(targets)}]}],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    prom = Prometheus(process, f"http://127.0.0.1:{port}", log)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, 30, "prometheus to be ready", interval=0.2)
    except AssertionError:
        prom.stop()
        pytest.fail(f"prometheus was not ready within 30s:\n{log.read_text()}")
    return prom


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Start a real Prometheus scraping the given `host:port` targets every second."""
    started: list[Prometheus] = []

    def start(targets: Sequence[str], rule_files: Sequence[Path] = ()) -> Prometheus:
        prom = start_prometheus(targets, tmp_path / f"prometheus-{len(started)}", rule_files)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()
