"""Figures as data: every bench takes `--json PATH` and writes one JSON object there.

The object holds the bench's own figures (the keys its docstring names) and, under
`machine`, what a figure must be read against on a shared machine: CPUs, the load average
when the bench ended, Python, the time. docs/benchmarks.md lists every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="Also write the figures as one JSON object to PATH (keys: see the docstring).",
    )


def write_json(path: Path | None, bench: str, figures: dict[str, Any]) -> None:
    """Write `figures` with the machine's state to `path` (nothing when it is None)."""
    if path is None:
        return
    document = {
        "bench": bench,
        **figures,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    print(f"figures written to {path}")
