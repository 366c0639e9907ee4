"""`-o json|yaml|wide`, as kubectl spells it, for the commands that list resources.

Tables (the default, and `wide` with more columns) are for people; `json` and `yaml`
print the same records as data, one document, for scripts (`jq`, `yq`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

FORMATS = ("table", "wide", "json", "yaml")


def add_output_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default="table",
        help="table (default), wide (more columns), json or yaml (data for scripts).",
    )


def dump(data: Any, fmt: str) -> None:
    """Print `data` (plain dicts, lists, strings, numbers) as one JSON or YAML document."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, width=100))
    else:
        raise ValueError(f"--output: {fmt!r} is not a data format (json, yaml)")
