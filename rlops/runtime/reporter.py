"""POSTing progress to whoever tracks the run, with least privilege.

Training pods hold no cluster rights: they POST each progress record (JSON, a
`Bearer` token in the header) to `RLOPS_PROGRESS_URL`, and the final RunResult to the
same URL with `?final=1`. A background thread sends, so training never waits on
the network. Every record is sent, in order, because the operator's trackers and early
stopping read each iteration: the records queued since the last send go out back to back,
at most one such burst every `interval` seconds. A failed record is sent again; while the
endpoint is down the backlog keeps the newest `MAX_BACKLOG` records. Failures are logged
and never end training.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

_STOP = object()
_RETRY_GAP = 0.5  # seconds between tries of a failed record, whatever the interval
MAX_BACKLOG = 1000  # records kept while the endpoint is down (the newest)


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *params.items()])
    return urlunsplit(parts._replace(query=query))


class ProgressReporter:
    """Sends progress records in the background; `close` sends the final result."""

    def __init__(self, url: str, token: str, interval: float = 2.0, timeout: float = 5.0) -> None:
        self.url = url
        self.token = token
        self.interval = interval
        self.timeout = timeout
        self.sent = 0
        self.failing = False
        self.dropped = False
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rlops-progress", daemon=True)
        self._thread.start()

    def report(self, record: dict[str, Any]) -> None:
        self._queue.put(record)

    def close(
        self, final: dict[str, Any] | None, wait: float = 10.0, final_deadline: float = 30.0
    ) -> None:
        """Send what is queued, then `final`.

        The final result is the one message that must arrive (the tracker may be restarting),
        so it is retried with backoff for up to `final_deadline` seconds: short, well inside
        the time a SLURM job has between its checkpoint signal and its time limit.
        """
        self._queue.put(_STOP)
        self._thread.join(wait)
        if final is None:
            return
        deadline = time.monotonic() + final_deadline
        delay = 0.5
        while not self._post(with_query(self.url, final="1"), final):
            if time.monotonic() + delay > deadline:
                log.warning("gave up sending the final result after %.0f s", final_deadline)
                return
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _run(self) -> None:
        backlog: deque[dict[str, Any]] = deque(maxlen=MAX_BACKLOG)
        last_burst = float("-inf")
        stopping = False
        while not stopping:
            stopping = self._take(backlog, block=not backlog)
            gap = max(self.interval, _RETRY_GAP) if self.failing else self.interval
            wait = last_burst + gap - time.monotonic()
            if not stopping and wait > 0:
                time.sleep(wait)
                stopping = self._take(backlog, block=False)
            last_burst = time.monotonic()
            while backlog and self._post(self.url, backlog[0]):
                backlog.popleft()
            self.failing = bool(backlog)

    def _take(self, backlog: deque[dict[str, Any]], block: bool) -> bool:
        """Move the queued records into the backlog; whether to stop."""
        try:
            item = self._queue.get(block=block)
            while True:
                if item is _STOP:
                    return True
                if len(backlog) == backlog.maxlen and not self.dropped:
                    log.warning("the progress endpoint is behind: dropping the oldest records")
                    self.dropped = True
                backlog.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return False

    def _post(self, url: str, payload: dict[str, Any]) -> bool:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
            self.sent += 1
            return True
        except Exception as exc:  # Reporting must never end training.
            log.warning("progress POST to %s failed: %s", url.split("?")[0], exc)
            return False
