"""The experiment lifecycle, once, for every backend (pure: no I/O, no backend imports).

`machine.decide` turns the status, the requests (annotations or the runner's records) and
the backend's normalised `Observation` into one `Step`: what to do (submit, end with a
checkpoint, cancel, nothing) and the phase and message that follow. `status` builds the
RLExperiment status from a step; `conditions` the kstatus conditions shared with the
Sweep; `progress` the one budget-percent rule and the one metric lookup.
"""

from rlops.lifecycle.conditions import experiment_conditions, kstatus_conditions, stamp_transitions
from rlops.lifecycle.machine import Action, Requests, Step, decide, ended_phase, refused
from rlops.lifecycle.observation import Observation
from rlops.lifecycle.progress import (
    experiment_result,
    metric_value,
    objective_metric,
    percent_of_budget,
    progress_of,
)
from rlops.lifecycle.status import apply_step, submitted_status

__all__ = [
    "Action",
    "Observation",
    "Requests",
    "Step",
    "apply_step",
    "decide",
    "ended_phase",
    "experiment_conditions",
    "experiment_result",
    "kstatus_conditions",
    "metric_value",
    "objective_metric",
    "percent_of_budget",
    "progress_of",
    "refused",
    "stamp_transitions",
    "submitted_status",
]
