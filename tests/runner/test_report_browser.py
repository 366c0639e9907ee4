"""The HTML report in a real browser: Debian's `chromium`, headless, opens report/index.html
of a sweep (run with the fake trainer, tests/runner/fake_trainer.py) and, asked over the
DevTools protocol, says that every <img> loaded and has a size: the learning curves and the
objective-per-parameter figures and the ASHA rungs render, no image is broken, none is missing;
and the same for a PBT sweep (the tabular-Q command trainer with the real runtime), whose
report adds each trial's parameter schedule."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import sweep
from tests.operator.harness import terminate
from tests.runner.helpers import run_manifest
from tests.runner.pbt_manifest import tabular_pbt
from tests.runner.test_command_sweep import rlops_run
from tests.waiting import wait_until

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
IMAGES = """JSON.stringify(location.protocol === "file:" && document.readyState === "complete"
  ? Array.from(document.images).map(
  i => ({src: i.getAttribute("src"), complete: i.complete, width: i.naturalWidth,
         height: i.naturalHeight})) : null)"""


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed (scripts/setup.sh installs it)")
    return path


async def evaluate(ws_url: str, expression: str, timeout: float = 60) -> Any:
    """Runtime.evaluate in the page until it returns something other than null."""
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        ident = 0
        while time.monotonic() < deadline:
            ident += 1
            params = {"expression": expression, "returnByValue": True}
            await ws.send_json({"id": ident, "method": "Runtime.evaluate", "params": params})
            while True:
                reply = await ws.receive_json(timeout=30)
                if reply.get("id") == ident:
                    break
            value = reply["result"]["result"].get("value")
            if value not in (None, "null"):
                return json.loads(value)
            await asyncio.sleep(0.2)
    raise AssertionError(f"the page gave no answer to {expression!r}")


def images_in_browser(index: Path, profile: Path) -> list[dict[str, Any]]:
    argv = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
            index.as_uri()]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        wait_until(
            lambda: (
                (port_file.exists() and port_file.read_text().strip()) or process.poll() is not None
            ),
            60,
            "chromium to start",
        )
        assert process.poll() is None, "chromium exited before it started"
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t["type"] == "page")
        images: list[dict[str, Any]] = asyncio.run(evaluate(page["webSocketDebuggerUrl"], IMAGES))
        return images
    finally:
        terminate(process)


def assert_every_image_renders(index: Path, profile: Path) -> list[str]:
    """Every <img> of the page is a figure of the report's folder, and each one loaded in
    the browser with a size; returns the figures' names."""
    referenced = re.findall(r'<img[^>]*src="([^"]+)"', index.read_text())
    figures = sorted(p.name for p in index.parent.glob("*.png"))
    assert sorted(referenced) == figures
    images = images_in_browser(index, profile)
    assert sorted(i["src"] for i in images) == figures
    broken = [i for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert broken == []
    return figures


def test_every_figure_of_a_sweep_report_renders(tmp_path: Path) -> None:
    asha = {"type": "asha", "gracePeriod": 1, "reductionFactor": 2, "minTrials": 2}
    manifest = (
        sweep("browse")
        .param("config.training.lr", "grid", values=[0.001, 0.01, 0.1])
        .param("config.training.gamma", "grid", values=[0.9, 0.99])
        .template("stop", {"iterations": 4})
        .set("spec.parallelism", 6)
        .set("spec.earlyStopping", asha)
        .obj()
    )
    outcome = run_manifest(manifest, tmp_path / "runs", cpus=6, report=True)
    assert outcome.code == 0, outcome.output
    index = outcome.layout.root / "report" / "index.html"
    figures = assert_every_image_renders(index, tmp_path / "profile")
    assert len(figures) >= 4  # curves + one per parameter
    assert "asha_rungs.png" in figures  # + the ASHA rungs


def test_the_parameter_schedules_of_a_pbt_report_render(tmp_path: Path) -> None:
    file = tmp_path / "tabular-pbt.yaml"
    file.write_text(yaml.safe_dump(tabular_pbt()))
    done = rlops_run(file, tmp_path / "runs")
    assert done.returncode == 0, done.stdout + done.stderr
    root = tmp_path / "runs" / "tabular-pbt"
    results = json.loads((root / "results.json").read_text())
    assert any(t["exploits"] for t in results["trials"]), done.stdout  # PBT exploited
    figures = assert_every_image_renders(root / "report" / "index.html", tmp_path / "profile")
    assert "schedule_config.alpha.png" in figures  # the parameter's schedule
    assert "learning_curves.png" in figures


def test_a_missing_figure_is_seen_broken(tmp_path: Path) -> None:
    """The check itself: an <img> whose file is gone loads with no size."""
    (tmp_path / "ok.png").write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360f8cf000000030101009a2f5c2c0000000049454e44ae426082"
        )
    )
    index = tmp_path / "index.html"
    index.write_text('<html><body><img src="ok.png"><img src="gone.png"></body></html>')
    images = {i["src"]: i for i in images_in_browser(index, tmp_path / "profile")}
    assert images["ok.png"]["width"] == 1 and images["gone.png"]["width"] == 0
