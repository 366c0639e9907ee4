"""Reading W&B's offline run files (`wandb/offline-run-*/run-<id>.wandb`) back, for tests.

The file is a LevelDB-style log (W&B's own header `:W&B`, 0xBEE1, version; then 32 KiB
blocks of records, each `crc32 (4) | length (2) | type (1)`, a record split over blocks as
FIRST/MIDDLE/LAST) of protobuf `wandb.proto.wandb_internal_pb2.Record`s. This reader is
test code: recent wandb releases dropped their Python reader of the format.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32768
FILE_HEADER = struct.Struct("<4sHB")
RECORD_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    ident, magic, _version = FILE_HEADER.unpack_from(data, 0)
    assert ident == b":W&B" and magic == 0xBEE1, f"{path}: not a W&B run file"
    out: list[bytes] = []
    pending = b""
    offset = FILE_HEADER.size
    while offset + RECORD_HEADER.size <= len(data):
        room = BLOCK - offset % BLOCK
        if room < RECORD_HEADER.size:
            offset += room  # The block's tail is padding.
            continue
        _crc, length, kind = RECORD_HEADER.unpack_from(data, offset)
        if kind == 0 and length == 0:
            offset += room
            continue
        start = offset + RECORD_HEADER.size
        chunk = data[start : start + length]
        offset = start + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
    return out


@dataclass
class OfflineRun:
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # with "_step"
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def read_run(path: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    run = OfflineRun()
    for raw in records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.name, run.group, run.job_type = (
                r.run_id, r.display_name, r.run_group, r.job_type
            )  # fmt: skip
            run.tags = list(r.tags)
            for item in r.config.update:
                run.config[item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run.config[item.key] = json.loads(item.value_json)
        elif kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                   for item in record.history.item}  # fmt: skip
            row.setdefault("_step", record.history.step.num)
            run.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(directory: Path) -> dict[str, list[OfflineRun]]:
    """Every offline run file under `directory`, by run name (resumes: several files)."""
    runs: dict[str, list[OfflineRun]] = {}
    for path in sorted(directory.glob("wandb/offline-run-*/run-*.wandb")):
        run = read_run(path)
        runs.setdefault(run.name, []).append(run)
    return runs
