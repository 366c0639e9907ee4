"""Helpers of the runner tests: run a sweep or an experiment in-process, read trial files."""

from __future__ import annotations

import io
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rlops.api import RLExperiment, Sweep
from rlops.backends.local.executor import LocalBackend
from rlops.backends.packing import Slots
from rlops.runner.experiment_run import ExperimentRun
from rlops.runner.layout import SweepLayout, TrialRecord, read_record
from rlops.runner.session import HeldLock, RunnerSettings, RunOptions
from rlops.runner.sweep_run import SweepRun

FAKE_TRAINER = Path(__file__).with_name("fake_trainer.py")
FAKE_COMMAND = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_TRAINER))}"


@dataclass
class Outcome:
    code: int
    root: Path
    output: str

    @property
    def layout(self) -> SweepLayout:
        return SweepLayout(self.root)

    def record(self, trial: str) -> TrialRecord:
        record = read_record(self.layout.trial(trial))
        assert record is not None, trial
        return record

    def results(self) -> dict[str, Any]:
        return json.loads(self.layout.results.read_text())  # type: ignore[no-any-return]


def run_manifest(
    manifest: dict[str, Any],
    root: Path,
    cpus: float = 2,
    gpus: tuple[int, ...] = (),
    command: str = FAKE_COMMAND,
    **options: Any,
) -> Outcome:
    """Run a Sweep or RLExperiment manifest as `rlops run` does, with plain output captured."""
    from rlops.runner.display import PlainDisplay

    settings = RunnerSettings(poll_seconds=0.05, trial_command=command, lock_wait_seconds=60)
    out = io.StringIO()
    display = PlainDisplay(console=Console(file=out, width=200, no_color=True))
    slots = Slots(cpus, gpus)

    def factory(lock: HeldLock) -> LocalBackend:
        return LocalBackend(slots, shlex.split(command), inherit_fds=(lock.fd,))

    run_options = RunOptions(root=root, report=options.pop("report", False), **options)
    name = manifest["metadata"]["name"]
    if manifest["kind"] == "Sweep":
        code = SweepRun(
            Sweep.model_validate(manifest), manifest, run_options, settings, display, factory
        ).run()
    else:
        code = ExperimentRun(
            RLExperiment.model_validate(manifest), manifest, run_options, settings, display, factory
        ).run()
    return Outcome(code, root / name, out.getvalue())


def max_overlap(records: list[TrialRecord]) -> int:
    """The most launches that were running at the same moment."""
    events = []
    for record in records:
        for launch in record.launches:
            assert launch.ended_at is not None
            events += [(launch.started_at, 1), (launch.ended_at, -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak
