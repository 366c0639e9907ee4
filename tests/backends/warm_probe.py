"""A trial stand-in for the warm launcher's tests: it prints, as one JSON line on stdout,
what a process sees (pid, parent, working directory, argv, sys.path[0], selected
environment variables, whether stdin is empty), marks its environment and a module the
launcher had imported (a later trial must see neither), then exits as its `--spec` file
says: `exit N`, or `wait`: until SIGTERM or SIGUSR1, then 75."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    spec = Path(sys.argv[sys.argv.index("--spec") + 1]).read_text().split()
    seen = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "cwd": os.getcwd(),
        "argv": sys.argv,
        "path0": sys.path[0],
        "env": {k: os.environ.get(k) for k in ("RLOPS_TRIAL_CPUS", "RLOPS_PAUSE_AT_ITERATION",
                                                 "PROBE_LEAK", "OMP_NUM_THREADS")},
        "mark": getattr(json, "probe_mark", "unset"),
        "stdin": sys.stdin.read(),
    }  # fmt: skip
    print(json.dumps(seen), flush=True)
    os.environ["PROBE_LEAK"] = "leaked"
    json.probe_mark = "set"  # type: ignore[attr-defined]
    if spec[0] == "wait":
        got: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, lambda signum, frame: got.append(signum))
        while not got:
            time.sleep(0.02)
        print(f"signal {got[0]}", flush=True)
        return 75
    print("stderr line", file=sys.stderr, flush=True)
    return int(spec[1])


if __name__ == "__main__":
    sys.exit(main())
