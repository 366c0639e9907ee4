"""Which pytest-xdist worker this process is, for test resources that must not collide."""

from __future__ import annotations

import os


def worker_index() -> int | None:
    """This process's pytest-xdist worker number (`gw<N>`), None outside pytest-xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return int(worker.removeprefix("gw") or 0) if worker else None
