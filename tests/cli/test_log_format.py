"""`--log-format json`: `rlops operator` (a real process on the Kubernetes test bed) writes
one JSON object a line, with the object it acted on; the SLURM bridge's logging is set up
by the same function, checked here in a child process; the runtime's driver log (KubeRay)
keeps everything written to fds 1 and 2, child processes included, in attempts/<n>.log."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.builders import experiment
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_the_operator_logs_json_lines(
    kube: KubeTestBed, kube_namespace: str, tmp_path: Path
) -> None:
    operator = OperatorProcess(kube, kube_namespace, tmp_path)
    operator.extra_args = ["--log-format", "json"]
    try:
        operator.start()
        body = experiment("j").kubernetes().obj()
        kube.kubectl(
            "apply", "-n", kube_namespace, "-f", "-", input=yaml.safe_dump(body), check=True
        )

        def about_j() -> list[dict[str, object]]:
            lines = [json.loads(x) for x in operator.log().splitlines() if x.strip()]
            return [x for x in lines if (x.get("object") or {}).get("name") == "j"]  # type: ignore[union-attr]

        entries = wait_until(about_j, 60, "a log line about RLExperiment j", interval=0.5)
    finally:
        operator.stop()
    for line in operator.log().splitlines():
        if line.strip():
            record = json.loads(line)  # Every line is JSON, nothing else.
            assert {"message", "severity", "timestamp"} <= set(record), record
    assert entries[0]["object"]["namespace"] == kube_namespace  # type: ignore[index]


def test_bridge_logging_in_json() -> None:
    code = textwrap.dedent(
        """
        import logging
        from rlops.cli import build_parser
        from rlops.cli.logformat import configure_logging
        args = build_parser().parse_args(["slurm-bridge", "--cluster", "c", "--log-format", "json"])
        configure_logging(args.log_format)
        logging.getLogger("rlops.slurm_bridge").info("submitted %s", "ns/exp")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    [line] = done.stderr.splitlines()
    record = json.loads(line)
    assert record["message"] == "submitted ns/exp" and record["severity"] == "info"
    assert record["name"] == "rlops.slurm_bridge"


def test_driver_log_keeps_fd_output(tmp_path: Path) -> None:
    log = tmp_path / "attempts" / "1.log"
    code = textwrap.dedent(
        f"""
        import subprocess, sys
        from pathlib import Path
        from rlops.runtime.driverlog import tee_output
        print("before")
        with tee_output(Path({str(log)!r})):
            print("from python", flush=True)
            print("to stderr", file=sys.stderr, flush=True)
            subprocess.run(["echo", "from a child"], check=True)
        print("after")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    kept = log.read_text().splitlines()
    assert sorted(kept) == ["from a child", "from python", "to stderr"]
    assert done.stdout.splitlines()[0] == "before" and done.stdout.splitlines()[-1] == "after"
    assert set(kept) <= set(done.stdout.splitlines())  # The pod's log still shows it all.
