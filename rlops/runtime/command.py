"""One attempt of a command trainer: the user's program trains, the runtime keeps the books.

The program gets the contract's environment (docs/command-trainers.md): its config as
JSON (`RLOPS_CONFIG`), a file to append one JSON line per iteration to (`RLOPS_PROGRESS`),
a directory for its checkpoints (`RLOPS_CHECKPOINT_DIR`) and, on resume, the latest one
(`RLOPS_RESUME_CHECKPOINT`). The runtime does for it what it does for RLlib: progress.jsonl
and TensorBoard, the progress endpoint, stop criteria, the pause point, the N best
checkpoints, signals, result.json. It asks the program to end with SIGTERM (the program
checkpoints and exits, 75 by convention) and kills it after a grace period.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlops.api.command import expand
from rlops.api.experiment import RLExperimentSpec
from rlops.api.runinfo import (
    CHECKPOINT_DIR,
    PAUSED_REASON,
    ExitCode,
    ProgressReader,
    ProgressRecord,
    RunResult,
)
from rlops.runtime.attempt import run_result, totals_at
from rlops.runtime.checkpoints import METADATA_FILE, CheckpointInfo, CheckpointStore, score_of
from rlops.runtime.loop import Outcome, better, publish
from rlops.runtime.progress import ProgressLog, flatten
from rlops.runtime.pythonpath import runtime_env
from rlops.runtime.reporter import ProgressReporter
from rlops.runtime.signals import RequeueNow, SignalWatch
from rlops.runtime.stopping import Totals, stop_reason

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
PROGRAM_PROGRESS_FILE = "trainer-progress.jsonl"
INCOMING_DIR = "incoming"  # under checkpoints/: where the program writes its checkpoints
# Variables of the runtime's own that the program has no use for (the endpoint's token).
PRIVATE_VARS = ("RLOPS_PROGRESS_TOKEN", "RLOPS_PROGRESS_URL")
POLL_SECONDS = 0.05
# Keys of a progress line with a meaning of their own; every other finite scalar is a metric.
FIXED_KEYS = ("iteration", "timesteps", "episode_return_mean", "checkpoint", "env_runners")


def program_checkpoint(info: CheckpointInfo) -> Path | None:
    """The program's own file or directory inside an adopted checkpoint."""
    entries = [p for p in info.path.iterdir() if p.name != METADATA_FILE]
    return entries[0] if len(entries) == 1 else None


def program_argv(spec: RLExperimentSpec, run_dir: Path, paths: list[str]) -> list[str]:
    """`spec.command` with placeholders filled, `python` as this interpreter, and a relative
    script found on the import paths (the manifest's directory, RLOPS_PYTHONPATH, cwd)."""
    assert spec.command is not None
    argv = expand(spec.command, spec.config, spec.seed, str(run_dir))
    if argv[0] == "python":
        argv[0] = sys.executable
        script = 1 if len(argv) > 1 and not argv[1].startswith("-") else None
    else:
        script = 0 if "/" in argv[0] else None
    if script is not None and not Path(argv[script]).is_absolute():
        for base in paths:
            candidate = Path(base) / argv[script]
            if candidate.exists():
                argv[script] = str(candidate)
                break
    return argv


def program_env(
    spec: RLExperimentSpec,
    run_dir: Path,
    attempt: int,
    resume: Path | None,
    paths: list[str],
    environ: Mapping[str, str] = os.environ,
    counters: CheckpointInfo | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in PRIVATE_VARS}
    env.update(
        # The same import path Ray workers get for custom environments.
        PYTHONPATH=runtime_env(paths, environ)["env_vars"]["PYTHONPATH"],
        PYTHONUNBUFFERED="1",
        RLOPS_CONFIG=str(run_dir / CONFIG_FILE),
        RLOPS_RUN_DIR=str(run_dir),
        RLOPS_PROGRESS=str(run_dir / PROGRAM_PROGRESS_FILE),
        RLOPS_CHECKPOINT_DIR=str(run_dir / CHECKPOINT_DIR / INCOMING_DIR),
        RLOPS_ATTEMPT=str(attempt),
    )
    for name, value in (
        ("RLOPS_SEED", spec.seed),
        ("RLOPS_RESUME_CHECKPOINT", resume),
        # The run's own counters at that checkpoint: after a PBT exploit the checkpoint is
        # another run's, whose counters the program should not take for its own.
        ("RLOPS_RESUME_ITERATION", counters.iteration if counters else None),
        ("RLOPS_RESUME_TIMESTEPS", counters.timesteps if counters else None),
        ("RLOPS_CHECKPOINT_FREQUENCY", spec.checkpoint.frequency or None),
    ):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def as_result(line: str) -> dict[str, Any] | None:
    """A progress line as an RLlib-shaped result (the return under env_runners too)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    nested = data.get("env_runners")
    runners = nested if isinstance(nested, dict) else {}
    return {
        **data,
        "env_runners": {**runners, "episode_return_mean": data.get("episode_return_mean")},
    }


class CommandAttempt:
    """Runs the program once and follows it until it ends."""

    def __init__(
        self,
        spec: RLExperimentSpec,
        run_dir: Path,
        attempt: int,
        paths: list[str],
        grace_seconds: float,
        signals: SignalWatch | None = None,
        reporter: ProgressReporter | None = None,
        echo: Callable[[str], None] | None = None,
        pause_at: int | None = None,
    ) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.attempt = attempt
        self.paths = paths
        self.grace_seconds = grace_seconds
        self.signals = signals
        self.reporter = reporter
        self.echo = echo
        self.pause_at = pause_at
        self.store = CheckpointStore(run_dir / CHECKPOINT_DIR, spec.checkpoint)
        self.incoming = self.store.root / INCOMING_DIR
        self.totals = Totals()
        self.last_result: dict[str, Any] | None = None
        self.request: Outcome | None = None  # how the attempt ends once the program has
        self.lines = ProgressReader(run_dir / PROGRAM_PROGRESS_FILE)
        self.started = time.monotonic()
        self.base_time = 0.0
        self.progress: ProgressLog

    def run(self) -> RunResult:
        self.store.remove_partials()
        shutil.rmtree(self.incoming, ignore_errors=True)  # what a killed attempt left unreported
        self.incoming.mkdir(parents=True)
        latest = self.store.latest()
        resume: Path | None = None
        if latest is not None:
            self.totals = totals_at(latest)
            self.base_time = latest.time_seconds
            resume = program_checkpoint(latest)
            log.info("resuming from %s (iteration %d)", resume, latest.iteration)
        elif self.spec.checkpoint.resume_from is not None:
            resume = Path(self.spec.checkpoint.resume_from).resolve()
        (self.run_dir / CONFIG_FILE).write_text(json.dumps(self.spec.config, indent=1) + "\n")
        (self.run_dir / PROGRAM_PROGRESS_FILE).write_text("")
        argv = program_argv(self.spec, self.run_dir, self.paths)
        env = program_env(
            self.spec, self.run_dir, self.attempt, resume, self.paths, counters=latest
        )
        self.progress = ProgressLog(self.run_dir)
        self.started = time.monotonic()
        try:
            outcome = self._follow(subprocess.Popen(argv, env=env))
        except OSError as exc:
            outcome = Outcome("failed", None, f"cannot start {argv[0]!r}: {exc}")
        finally:
            self.progress.close()
        return run_result(outcome, self.totals, self.store, self.run_dir, self.attempt)

    def _follow(self, proc: subprocess.Popen[bytes]) -> Outcome:
        """Read the program's lines until it ends; ask it to end when a rule says so."""
        deadline = float("inf")
        try:
            while True:
                self._consume()
                if self.request is not None and deadline == float("inf"):
                    proc.send_signal(self._signal())
                    deadline = time.monotonic() + self.grace_seconds
                try:
                    code = proc.wait(timeout=POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    if time.monotonic() < deadline:
                        continue
                    proc.kill()
                    proc.wait()
                    code = None
                self._consume()
                self._adopt(None)  # checkpoints no line named: written on the way out
                return self._outcome(code)
        except RequeueNow as exc:  # a second signal: no time for a checkpoint
            proc.kill()
            proc.wait()
            return Outcome("requeue", None, f"{exc}; the program was killed, not checkpointed")

    def _consume(self) -> None:
        for line in self.lines.read_lines():
            self._record(line.decode(errors="replace"))
            if self.request is None:
                self.request = self._request()

    def _signal(self) -> signal.Signals:
        received = self.signals.received if self.signals is not None else None
        return received or signal.SIGTERM

    def _request(self) -> Outcome | None:
        """Whether to ask the program to end now: a stop criterion, a signal, the pause point."""
        reason = stop_reason(self.spec.stop, self.totals)
        if reason is not None:
            return Outcome("succeeded", reason, f"stop criterion {reason} met")
        if self.signals is not None and self.signals.received is not None:
            name = self.signals.received.name
            return Outcome("requeue", None, f"{name} received; the program checkpointed")
        if self.pause_at is not None and self.totals.iteration >= self.pause_at:
            message = f"paused at iteration {self.totals.iteration}; the program checkpointed"
            return Outcome("requeue", PAUSED_REASON, message)
        return None

    def _outcome(self, code: int | None) -> Outcome:
        """How the attempt ended: as asked, whatever the program's exit code, else by that
        code. `None`: killed after the grace period."""
        if self.request is not None:
            if code is not None:
                return self.request
            late = f"the program did not end {self.grace_seconds:g}s after SIGTERM; killed"
            message = self.request.message.replace("; the program checkpointed", "")
            return replace(self.request, message=f"{message}; {late}")
        assert code is not None
        if code == ExitCode.SUCCEEDED:
            return Outcome("succeeded", None, "the program exited 0")
        if code == ExitCode.REQUEUE:
            return Outcome("requeue", None, "the program checkpointed and asked for a requeue")
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
        return Outcome("failed", None, f"the program {how}")

    def _record(self, line: str) -> None:
        result = as_result(line)
        if result is None:
            log.warning("not a JSON object in %s: %.200s", PROGRAM_PROGRESS_FILE, line)
            return
        flat = flatten(result)
        ret = flat.get("episode_return_mean")
        t = self.totals
        iteration, timesteps = result.get("iteration"), result.get("timesteps")
        time_seconds = self.base_time + time.monotonic() - self.started
        self.totals = Totals(
            iteration=iteration if isinstance(iteration, int) else t.iteration + 1,
            timesteps=timesteps if isinstance(timesteps, int) else t.timesteps,
            time_seconds=time_seconds,
            episode_return_mean=ret,
            best_episode_return_mean=better(t.best_episode_return_mean, ret),
        )
        self.last_result = result
        record = ProgressRecord(
            iteration=self.totals.iteration,
            timesteps=self.totals.timesteps,
            episode_return_mean=ret,
            time_seconds=round(time_seconds, 3),
            timestamp=time.time(),
            attempt=self.attempt,
            metrics={k: v for k, v in flat.items() if k.partition("/")[0] not in FIXED_KEYS},
        )
        publish(record, flat, self.progress, self.reporter, self.echo)
        named = result.get("checkpoint")
        if isinstance(named, str) and named:
            self._adopt(named)

    def _adopt(self, name: str | None) -> None:
        """Move checkpoints the program wrote into the store, at the current iteration: the
        one a progress line named, or (None) every complete one left (no leading dot)."""
        if name is not None:
            entries = [self.incoming / Path(name).name]
        else:
            entries = [p for p in self.incoming.iterdir() if not p.name.startswith(".")]
            entries.sort(key=lambda p: p.stat().st_mtime)
        for entry in entries:
            if not entry.exists():
                log.warning("checkpoint %s named by the program does not exist", entry)
                continue
            t = self.totals
            score = None
            if self.last_result is not None:
                score = score_of(self.last_result, self.spec.checkpoint.score_attribute)
            info = CheckpointInfo(
                path=entry,
                iteration=t.iteration,
                timesteps=t.timesteps,
                time_seconds=t.time_seconds,
                attempt=self.attempt,
                score=score,
                episode_return_mean=t.episode_return_mean,
                best_episode_return_mean=t.best_episode_return_mean,
            )
            self.store.adopt(entry, info)
