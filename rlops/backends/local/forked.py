"""The child side of the warm launcher (rlops.backends.local.warm): become the process
`python ARGV...` would have been, run it, and exit with its status."""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import runpy
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn


def exit_code_of(pid: int) -> int | None:
    """How child `pid` ended (`Popen.returncode`'s convention: -N for signal N), or None
    while it runs. It stays a zombie (WNOWAIT) until reaped, so its pid is not reused."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None or info.si_pid == 0:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def run_child(request: dict[str, Any], fds: Sequence[int]) -> NoReturn:
    """In the forked child: set up as the request says, run its argv, exit with its code."""
    code = 1
    try:
        _become(request, fds)
        code = _run(list(request["argv"])[1:])
    except BaseException:  # A failure to set up: the log says why.
        traceback.print_exc()
    finally:
        _exit(code)


def _become(request: dict[str, Any], fds: Sequence[int]) -> None:
    from rlops.backends.local.executor import _die_with_parent

    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    os.setsid()
    _die_with_parent()
    log, *_inherited = fds  # The inherited ones stay open, as pass_fds leaves them.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    _reseed()
    _size_threads(os.environ.get("OMP_NUM_THREADS"))


def _reseed() -> None:
    """Fresh random state, as a new process has (forked children would share the launcher's)."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(None)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()


def _size_threads(threads: str | None) -> None:
    """torch read OMP_NUM_THREADS when the launcher imported it: apply the trial's."""
    torch = sys.modules.get("torch")
    if torch is not None and threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def _run(args: list[str]) -> int:
    """`python ARGS...` for `-m MODULE ...` or `SCRIPT ...`: run it as `__main__`."""
    try:
        if args[0] == "-m":
            sys.argv = ["-m", *args[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(args[0])
            sys.argv = [args[0], *args[1:]]
            sys.path[0] = os.path.dirname(script)
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return _system_exit_code(exc.code)
    except KeyboardInterrupt:
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _system_exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _exit(code: int) -> NoReturn:
    """Leave as the interpreter would: exit handlers (Ray's shutdown among them), then flush."""
    try:
        atexit._run_exitfuncs()
    finally:
        _flush()
        os._exit(code)
