"""A run directory in an object store (`s3://bucket/prefix`, `gs://bucket/prefix`).

RLlib saves and restores checkpoints on local paths, and the run directory's readers
(progress.jsonl, result.json) append and rename files, which an object store cannot do. So
the runtime trains in a local scratch directory that mirrors the store, through pyarrow.fs
(the filesystems Ray itself uses for `storage_path`):

- `pull` at the start copies what the store holds (checkpoints, progress.jsonl,
  result.json, attempt logs) into the scratch directory, so the next attempt number and the
  checkpoint to resume from are read from the store;
- `push` uploads every file that changed since the last push, and deletes from the store the
  files that were removed here (pruned checkpoints). A checkpoint's metadata file
  (`rlops_checkpoint.json`, which makes it complete) is uploaded after its other files and
  deleted before them, so a checkpoint half uploaded when the pod died is never resumed from;
  hidden files (partial checkpoints, temporary files) are never uploaded;
- `mirrored` pushes every `interval` seconds in a thread while the attempt runs, and once
  more at the end.

Credentials and endpoints come from the environment, as for any pyarrow client:
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` for
`s3://`; `GOOGLE_APPLICATION_CREDENTIALS` (or the pod's workload identity) for `gs://`. A
GCS emulator or a private endpoint is named by `STORAGE_EMULATOR_HOST` (`http://host:port`,
the variable Google's own clients read): pyarrow is then pointed at it with anonymous
credentials, as it does not read that variable itself.

A store that cannot be reached or read at the start (a dead endpoint, a missing bucket,
refused credentials) raises `StoreUnreachable`, which names the storage path and the cause.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from rlops.runtime.checkpoints import METADATA_FILE

log = logging.getLogger(__name__)

GCS_RETRY_SECONDS = 30  # pyarrow's default retries an unreachable GCS for 15 minutes
Stamp = tuple[int, int]  # (size, mtime_ns) of a pushed file


def is_store_uri(path: str) -> bool:
    """Whether a run directory is an object-store URI rather than a path."""
    return "://" in path


def _last(rel: str) -> bool:
    """Upload last, delete first: the file that marks a checkpoint complete."""
    return rel.rsplit("/", 1)[-1] == METADATA_FILE


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


class StoreUnreachable(Exception):
    """The run directory's object store cannot be reached or read at the start."""

    def __init__(self, uri: str, cause: str) -> None:
        super().__init__(f"storage.path {uri}: the object store cannot be reached or read: {cause}")
        self.uri = uri


def _cause(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's filesystem of a store URI and the path in it (`bucket/prefix`)."""
    from pyarrow import fs

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if uri.startswith("gs://") and emulator:
        scheme, _, host = emulator.rpartition("://")
        store = fs.GcsFileSystem(
            anonymous=True, endpoint_override=host, scheme=scheme or "http",
            retry_time_limit=timedelta(seconds=GCS_RETRY_SECONDS),
        )  # fmt: skip
        return store, uri[len("gs://") :].rstrip("/")
    store, path = fs.FileSystem.from_uri(uri)
    return store, str(path)


class StoreMirror:
    """The scratch directory `local` mirrored to and from the store at `uri`."""

    def __init__(self, uri: str, local: Path) -> None:

        self.uri = uri.rstrip("/")
        self.local = local
        self.fs, self.base = filesystem(self.uri)
        self.pushed: dict[str, Stamp] = {}
        self.lock = threading.Lock()

    def _remote(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def remote_files(self) -> list[str]:
        """Paths of the store's files under the run directory, relative to it."""
        from pyarrow import fs

        selector = fs.FileSelector(self.base, recursive=True, allow_not_found=True)
        start = len(self.base) + 1
        infos: list[Any] = self.fs.get_file_info(selector)
        return sorted(i.path[start:] for i in infos if i.type == fs.FileType.File)

    def check(self) -> None:
        """Raise StoreUnreachable unless the store answers and its bucket exists (listing a
        missing bucket's prefix may find nothing rather than fail)."""
        from pyarrow import fs

        bucket = self.base.split("/", 1)[0]
        try:
            found = self.fs.get_file_info(bucket).type != fs.FileType.NotFound
        except OSError as exc:
            raise StoreUnreachable(self.uri, _cause(exc)) from exc
        if not found:
            raise StoreUnreachable(self.uri, f"the bucket {bucket!r} does not exist")

    def pull(self) -> int:
        """Copy the store's run directory into the scratch directory; returns files copied."""
        self.local.mkdir(parents=True, exist_ok=True)
        files = self.remote_files()
        for rel in files:
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.fs.open_input_stream(self._remote(rel)) as stream:
                target.write_bytes(stream.read())
            stat = target.stat()
            self.pushed[rel] = (stat.st_size, stat.st_mtime_ns)
        return len(files)

    def local_files(self) -> dict[str, Stamp]:
        found = {}
        for path in self.local.rglob("*"):
            rel = path.relative_to(self.local).as_posix()
            if _hidden(rel):
                continue
            try:
                if path.is_file():
                    stat = path.stat()
                    found[rel] = (stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:  # removed while we looked (a pruned checkpoint)
                continue
        return found

    def push(self) -> int:
        """Upload what changed and delete what went; returns the files uploaded."""
        with self.lock:
            here = self.local_files()
            gone = sorted((r for r in self.pushed if r not in here), key=_last, reverse=True)
            for rel in gone:
                self.fs.delete_file(self._remote(rel))
                del self.pushed[rel]
            changed = sorted((r for r, s in here.items() if self.pushed.get(r) != s), key=_last)
            uploaded = 0
            for rel in changed:
                try:
                    data = (self.local / rel).read_bytes()
                except FileNotFoundError:
                    continue
                with self.fs.open_output_stream(self._remote(rel)) as out:
                    out.write(data)
                self.pushed[rel] = here[rel]
                uploaded += 1
            return uploaded


def put_file(uri: str, rel: str, data: bytes) -> bool:
    """Write one file of the run directory at `uri` straight to the store; False (logged)
    when the store refuses it too."""
    try:
        store, base = filesystem(uri.rstrip("/"))
        with store.open_output_stream(f"{base}/{rel}") as out:
            out.write(data)
        return True
    except (OSError, ValueError) as exc:
        log.warning("writing %s to %s failed as well: %s", rel, uri, _cause(exc))
        return False


@contextmanager
def mirrored(uri: str, scratch: Path | None, interval: float) -> Iterator[Path]:
    """A scratch directory holding the store's run directory at `uri`, pushed back every
    `interval` seconds and at the end; yields the scratch directory."""
    root = Path(tempfile.mkdtemp(prefix="rlops-run-", dir=scratch))
    try:
        mirror = StoreMirror(uri, root)
        mirror.check()
        pulled = mirror.pull()
    except StoreUnreachable:
        shutil.rmtree(root, ignore_errors=True)
        raise
    except (OSError, ValueError) as exc:  # pyarrow: OSError from the store, ValueError a URI
        shutil.rmtree(root, ignore_errors=True)
        raise StoreUnreachable(uri, _cause(exc)) from exc
    log.info("run directory %s: %d file(s) pulled into %s", uri, pulled, root)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                mirror.push()
            except OSError as exc:  # the store is away for a moment: the next push retries
                log.warning("pushing the run directory to %s failed: %s", uri, exc)

    thread = threading.Thread(target=loop, name="rlops-storage", daemon=True)
    thread.start()
    try:
        yield root
    finally:
        stop.set()
        thread.join()
        mirror.push()
        log.info("run directory %s: pushed", uri)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def run_directory(path: str, scratch: Path | None, interval: float) -> Iterator[Path]:
    """The local directory the attempt writes: `path` itself, or a mirror of a store URI."""
    if not is_store_uri(path):
        yield Path(path)
        return
    with mirrored(path, scratch, interval) as local:
        yield local
