"""Experiment tracking from the driver side (runner, operator, SLURM bridge).

The drivers describe what they observe as snapshots (`TrialSnapshot`, `SweepSnapshot`,
read from the run directory or the status they already keep); a tracker brings the
tracking server up to date with them, idempotently: runs are found again by their
`rlops.key` tag, so a restarted driver, a requeued or a resumed attempt continues the
same run. Tracking errors never stop training: drivers report them and try again.
"""

from __future__ import annotations

from rlops.tracking.snapshots import SweepSnapshot, TrackingError, TrialSnapshot

__all__ = ["SweepSnapshot", "TrackingError", "TrialSnapshot"]
