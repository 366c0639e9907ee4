"""The HTTP endpoint of the metrics: /metrics, /healthz and /readyz on one port.

A small threaded server from the standard library so that a scrape never waits on
the operator's event loop; the operator and the bridge start one each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from rlops.metrics.observer import RlopsMetrics


class MetricsServer:
    """A running metrics endpoint; `port` is the bound port (useful with port 0)."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="rlops-metrics", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler(metrics: RlopsMetrics, ready: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            elif path == "/readyz":
                if ready():
                    self._reply(200, b"ready\n")
                else:
                    self._reply(503, b"not ready\n")
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # A scrape every few seconds is not worth a log line.

    return Handler


def start_http_server(
    metrics: RlopsMetrics,
    host: str = "0.0.0.0",
    port: int = 8080,
    ready: Callable[[], bool] = lambda: True,
) -> MetricsServer:
    """Serve `metrics` in a background thread until `.stop()`."""
    httpd = ThreadingHTTPServer((host, port), _handler(metrics, ready))
    httpd.daemon_threads = True
    return MetricsServer(httpd)
