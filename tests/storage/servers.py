"""What the object-store test servers share: starting one on a free loopback port from its
own virtualenv (made by scripts/setup.sh) and reading back what a bucket holds through the
pyarrow filesystem rlops itself uses."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.operator.harness import free_port, terminate


class StoreServer:
    """A test store on loopback; subclasses give `filesystem()`."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url, self.process = url, process

    def filesystem(self) -> Any:
        raise NotImplementedError

    def files(self, prefix: str) -> dict[str, int]:
        """`bucket/prefix/...` files under `prefix` and their sizes."""
        from pyarrow import fs

        selector = fs.FileSelector(prefix, recursive=True, allow_not_found=True)
        infos = self.filesystem().get_file_info(selector)
        return {i.path: i.size for i in infos if i.type == fs.FileType.File}

    def read(self, path: str) -> bytes:
        with self.filesystem().open_input_stream(path) as stream:
            data: bytes = stream.read()
            return data


@contextmanager
def serving(
    program: Path, argv: Callable[[int], list[str]], up: Callable[[str], bool], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`program argv(port)` on a free port, once `up(url)` answers: (url, process)."""
    if not program.exists():
        pytest.fail(f"{program} is missing: run scripts/setup.sh (it installs the test server)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([str(program), *argv(port)], stdout=out,
                                   stderr=subprocess.STDOUT, env=dict(os.environ))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{program.name} did not start: {log}")
            time.sleep(0.2)
        yield url, process
    finally:
        terminate(process)
