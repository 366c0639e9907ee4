"""Prometheus metrics of the operator, the SLURM bridge and `rlops run`.

`RlopsMetrics` (`observer`) is told what the drivers observed; `state` turns observed
objects into series rows; `server` serves /metrics, /healthz and /readyz.
"""

from rlops.metrics.observer import RlopsMetrics
from rlops.metrics.server import MetricsServer, start_http_server
from rlops.metrics.state import NO_BACKEND

__all__ = ["NO_BACKEND", "MetricsServer", "RlopsMetrics", "start_http_server"]
