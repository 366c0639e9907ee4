"""The sweep engine: pure functions from a Sweep and its observed trials to a plan.

No I/O, no clock, no subprocess: drivers (the operator, `rlops run`) observe trials,
call `plan`, and carry the plan out.
"""

from rlops.api import Backend, Phase, RLExperimentSpec, SweepSpec, SweepStatus
from rlops.sweep.engine import plan
from rlops.sweep.parameters import ParameterError, apply_parameters
from rlops.sweep.status import leaderboard
from rlops.sweep.trials import (
    LABEL_SEED,
    LABEL_SWEEP,
    LABEL_TRIAL,
    ExploitPlan,
    Plan,
    TrialPlan,
    TrialState,
    trial_name,
)

__all__ = [
    "LABEL_SEED", "LABEL_SWEEP", "LABEL_TRIAL", "Backend", "ExploitPlan", "ParameterError",
    "Phase", "Plan",
    "RLExperimentSpec", "SweepSpec", "SweepStatus", "TrialPlan", "TrialState",
    "apply_parameters", "leaderboard", "plan", "trial_name",
]  # fmt: skip
