"""The driver's own log in the run directory: `attempts/<n>.log`, as `rlops run` keeps it.

On Kubernetes the training output lives in the driver pod's log, which goes when
KubeRay deletes the RayJob. With `RLOPS_DRIVER_LOG=true` (the KubeRay backend sets it)
the runtime tees its standard output and error, at the file-descriptor level so Ray's
forwarded worker output and child processes are kept too, into the run directory,
where `rlops logs` reads it after the pods are gone.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def attempt_log(run_dir: Path, attempt: int) -> Path:
    return run_dir / "attempts" / f"{attempt}.log"


@contextmanager
def tee_output(path: Path) -> Iterator[None]:
    """Until the block ends, what goes to fds 1 and 2 also goes to `path` (appended)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    original = os.dup(1)
    saved_err = os.dup(2)
    read_end, write_end = os.pipe()
    log = path.open("ab")

    def pump() -> None:
        while chunk := os.read(read_end, 65536):
            os.write(original, chunk)
            log.write(chunk)
            log.flush()

    thread = threading.Thread(target=pump, name="rlops-driver-log", daemon=True)
    thread.start()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(original, 1)
        os.dup2(saved_err, 2)  # The pipe's last writer is gone: the pump sees its end.
        thread.join(timeout=10)
        for fd in (original, saved_err, read_end):
            os.close(fd)
        log.close()
