"""The run directory: the contract between the runtime and everything that watches it.

The runtime (`python -m rlops.runtime` / `rlops train`) writes, under one run directory:

    spec.yaml            the RLExperiment it trains (as given)
    progress.jsonl       one ProgressRecord per training iteration, appended
    result.json          a RunResult, written when the attempt ends (any way)
    checkpoints/         checkpoint_<iteration:06d>/ directories (RLlib's format)
    tensorboard/         TensorBoard scalars
    attempts/<n>.log     stdout+stderr of attempt n (written by the launcher)

Drivers (local runner, SLURM bridge, operator) read progress.jsonl and result.json
and never parse logs. Exit codes tell a launcher what to do next.
"""

from __future__ import annotations

import enum
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from rlops.api.base import Model

PROGRESS_FILE = "progress.jsonl"
RESULT_FILE = "result.json"
SPEC_FILE = "spec.yaml"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
ATTEMPTS_DIR = "attempts"  # a local run's launch logs: attempts/<attempt>.log


def log_path(run_dir: Path, attempt: int) -> Path:
    """Where a local launch of `attempt` in `run_dir` writes its output."""
    return run_dir / ATTEMPTS_DIR / f"{attempt}.log"


# The longest string the progress endpoint takes in a record or result (a message is cut).
MAX_REPORTED_STRING = 4096
# The most metrics the progress endpoint takes in a record (the runtime posts the first ones;
# progress.jsonl keeps them all).
MAX_REPORTED_METRICS = 64

PAUSED_REASON = "paused"  # RunResult.stop_reason of a run that ended at its pause point


class ExitCode(enum.IntEnum):
    """What the runtime's exit status means."""

    SUCCEEDED = 0  # a stop criterion was met
    FAILED = 1  # training raised; see result.json's message
    INVALID = 2  # the spec was rejected before training
    REQUEUE = 75  # EX_TEMPFAIL: signalled (SIGTERM/SIGUSR1), checkpointed; run me again


class ProgressRecord(Model):
    """One training iteration."""

    iteration: int = Field(description="Training iteration, counted over all attempts.")
    timesteps: int = Field(description="Env steps sampled, counted over all attempts.")
    episode_return_mean: float | None = Field(default=None, description="Mean episode return.")
    time_seconds: float = Field(description="Training wall time, summed over attempts.")
    timestamp: float = Field(description="Unix time the iteration ended.")
    attempt: int = Field(default=1, description="Attempt that produced it.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Other scalar results, `/`-separated keys."
    )


class RuntimeInfo(Model):
    """Where an attempt ran: enough to tell a container's interpreter from a host's."""

    hostname: str = Field(description="Host (or pod, or container) that trained.")
    python: str = Field(description="The interpreter that trained (sys.executable).")
    rlops_version: str = Field(description="The rlops version that trained.")
    ray_nodes: int | None = Field(
        default=None, description="Live Ray nodes in the cluster it trained on (None: no Ray)."
    )
    ray_head: str | None = Field(
        default=None, description="Address of the Ray head (its GCS) the attempt connected to."
    )
    env_runner_nodes: list[str] | None = Field(
        default=None, description="Node address of each remote env runner, as Ray placed them."
    )

    @model_serializer(mode="wrap")
    def _camel_case(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # result.json keeps RunResult's own keys; this block reads as the docs name it.
        data: dict[str, Any] = handler(self)
        return {to_camel(key): value for key, value in data.items()}


class RunResult(Model):
    """How an attempt ended."""

    status: str = Field(description="succeeded, failed, requeue or invalid.")
    exit_code: int = Field(description="The runtime's exit code (ExitCode).")
    message: str = Field(default="", description="Why it ended.")
    stop_reason: str | None = Field(default=None, description="The stop criterion that was met.")
    iteration: int = Field(default=0, description="Last iteration.")
    timesteps: int = Field(default=0, description="Env steps in all.")
    episode_return_mean: float | None = Field(default=None, description="Final mean return.")
    best_episode_return_mean: float | None = Field(default=None, description="Best mean return.")
    best_checkpoint: str | None = Field(default=None, description="Best checkpoint path.")
    last_checkpoint: str | None = Field(default=None, description="Latest checkpoint path.")
    attempt: int = Field(default=1, description="Attempt number.")
    time_seconds: float = Field(default=0.0, description="Training wall time in all.")
    runtime: RuntimeInfo | None = Field(default=None, description="Where the attempt ran.")


class RunFileError(Exception):
    """A run file that is there but is no regular file (a FIFO, a directory): never read."""


# A progress line longer than this is skipped (the rest of it, up to its newline, too).
MAX_LINE_BYTES = 1024 * 1024
MAX_RESULT_BYTES = 1024 * 1024


def open_regular(path: Path) -> BinaryIO | None:
    """`path` open for reading, never blocking (a FIFO would block an open() for ever);
    None when it does not exist; RunFileError when it is no regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else (
            "a special file")  # fmt: skip
        raise RunFileError(f"{path.name} is {kind}, not a regular file; not read")
    return os.fdopen(fd, "rb")


def newer(a: ProgressRecord | None, b: ProgressRecord) -> bool:
    """Whether `b` is later progress than `a`: a later attempt, or a later iteration of one
    (a line older than one already read never moves progress backwards)."""
    return a is None or (b.attempt, b.iteration) >= (a.attempt, a.iteration)


@dataclass
class ProgressReader:
    """progress.jsonl read incrementally, from where it stopped.

    A torn last line waits for the next read; a file truncated or replaced (rotated) is
    read again from its start; a line longer than MAX_LINE_BYTES, ended or not, is skipped
    rather than read again and again; a line that is no valid record is skipped.
    """

    path: Path
    offset: int = 0
    identity: tuple[int, int] | None = None
    skipping: bool = False  # inside an over-long line, until its newline

    def read_new(self) -> list[ProgressRecord]:
        records = []
        for line in self.read_lines():
            try:
                records.append(ProgressRecord.model_validate(json.loads(line)))
            except ValueError:
                continue
        return records

    def read_lines(self) -> list[bytes]:
        """The complete lines appended since the last read (a command trainer's own file
        is read with the same rules before its lines become records)."""
        f = open_regular(self.path)
        if f is None:
            return []
        with f:
            st = os.fstat(f.fileno())
            identity = (st.st_dev, st.st_ino)
            if identity != self.identity or st.st_size < self.offset:
                self.identity, self.offset, self.skipping = identity, 0, False
            f.seek(self.offset)
            chunk = f.read(4 * MAX_LINE_BYTES)
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            if len(chunk) >= MAX_LINE_BYTES:
                self.offset += len(chunk)
                self.skipping = True
            return []
        lines = chunk[: end - 1].split(b"\n")
        if self.skipping:
            lines, self.skipping = lines[1:], False
        self.offset += end
        return [line for line in lines if len(line) <= MAX_LINE_BYTES and line.strip()]


@dataclass
class ProgressTail:
    """The one incremental reader of a run's progress.jsonl (ProgressReader: a torn last
    line waits, a truncated or rotated file is read again, over-long lines are skipped).

    `last` is the latest progress, never an older one; `fresh` the records the last read
    returned; `records` every record read, when `keep` (the runner's history).
    """

    path: Path
    keep: bool = False
    records: list[ProgressRecord] = field(default_factory=list)
    fresh: list[ProgressRecord] = field(default_factory=list)
    last: ProgressRecord | None = None
    reader: ProgressReader | None = None

    def refresh(self) -> bool:
        """Read new records; True when there were any (RunFileError: no regular file)."""
        if self.reader is None:
            self.reader = ProgressReader(self.path)
        self.fresh = self.reader.read_new()
        if self.keep:
            self.records += self.fresh
        for record in self.fresh:
            if newer(self.last, record):
                self.last = record
        return bool(self.fresh)

    def read(self) -> ProgressRecord | None:
        """Read new records; the latest progress."""
        self.refresh()
        return self.last


def read_progress(run_dir: Path) -> list[ProgressRecord]:
    """Every progress record of the run; torn or invalid lines are skipped."""
    reader = ProgressReader(run_dir / PROGRESS_FILE)
    records: list[ProgressRecord] = []
    while True:
        offset = reader.offset
        records += reader.read_new()
        if reader.offset == offset:
            return records


def read_result(run_dir: Path) -> RunResult | None:
    """result.json; None when it is missing, torn or invalid (RunFileError: no regular file)."""
    f = open_regular(run_dir / RESULT_FILE)
    if f is None:
        return None
    with f:
        text = f.read(MAX_RESULT_BYTES + 1)
    if len(text) > MAX_RESULT_BYTES:
        return None
    try:
        return RunResult.model_validate(json.loads(text))
    except ValueError:
        return None


def progress_line(record: ProgressRecord) -> str:
    data: dict[str, Any] = record.model_dump(mode="json", by_alias=False, exclude_none=True)
    return json.dumps(data, separators=(",", ":")) + "\n"
