"""Progress reporting survives a tracker that is briefly down: the final result is retried
with backoff, and a record whose POST failed is sent again; and every record reaches the
tracker in order, however fast they come (its trackers and early stopping read each
iteration)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rlops.runtime.reporter import ProgressReporter
from tests.waiting import wait_until


class Tracker(ThreadingHTTPServer):
    """Answers 503 to the first `failures` POSTs, then 202, recording what it accepted."""

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.refused = 0


class _Handler(BaseHTTPRequestHandler):
    server: Tracker

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.refused < self.server.failures:
            self.server.refused += 1
            self.send_response(503)
        else:
            self.server.accepted.append((self.path, body))
            self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tracker(request: pytest.FixtureRequest) -> Iterator[Tracker]:
    server = Tracker(failures=request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("tracker", [3], indirect=True)
def test_final_result_is_retried_until_the_tracker_answers(tracker: Tracker) -> None:
    url = f"http://127.0.0.1:{tracker.server_port}/progress/ns/exp"
    reporter = ProgressReporter(url, "token", interval=0.01)
    reporter.close({"status": "succeeded"}, final_deadline=30.0)
    assert tracker.refused == 3
    assert tracker.accepted == [("/progress/ns/exp?final=1", {"status": "succeeded"})]


@pytest.mark.parametrize("tracker", [1], indirect=True)
def test_a_record_whose_post_failed_is_sent_again(tracker: Tracker) -> None:
    url = f"http://127.0.0.1:{tracker.server_port}/progress/ns/exp"
    reporter = ProgressReporter(url, "token", interval=0.05)
    reporter.report({"iteration": 1})
    wait_until(lambda: tracker.accepted, 10, "the report to be sent again", interval=0.01)
    reporter.close(None, wait=10.0)
    assert tracker.refused == 1
    assert [body for _, body in tracker.accepted] == [{"iteration": 1}]


@pytest.mark.parametrize("tracker", [1000], indirect=True)
def test_the_final_retry_gives_up_at_its_deadline(tracker: Tracker) -> None:
    url = f"http://127.0.0.1:{tracker.server_port}/progress/ns/exp"
    reporter = ProgressReporter(url, "token", interval=0.01)
    reporter.close({"status": "failed"}, wait=1.0, final_deadline=1.0)
    assert tracker.accepted == []


@pytest.mark.parametrize("tracker", [2], indirect=True)
def test_every_record_is_sent_in_order_however_fast_they_come(tracker: Tracker) -> None:
    url = f"http://127.0.0.1:{tracker.server_port}/progress/ns/exp"
    reporter = ProgressReporter(url, "token", interval=0.2)
    for iteration in range(1, 41):
        reporter.report({"iteration": iteration})
    wait_until(lambda: len(tracker.accepted) == 40, 20, "every record to be sent", interval=0.01)
    reporter.close({"status": "succeeded"})
    sent = [body.get("iteration") for _, body in tracker.accepted]
    assert sent == [*range(1, 41), None]  # the 40 records in order, then the final result
    assert tracker.refused == 2  # the first record's two failed tries were sent again
