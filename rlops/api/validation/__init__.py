"""Pure validation: every error at once, each with its field path and what is allowed.

One module per concern: `manifest` (kind, apiVersion, shape, name), `experiment` (an
RLExperiment's spec), `placement` (Kubernetes and SLURM fields), `sweep` (a Sweep's spec)
and `errors` (FieldError and the rules they share). A new rule goes into the module of
its concern, or a new module called from there.
"""

from rlops.api.validation.errors import FieldError, pydantic_errors
from rlops.api.validation.experiment import validate_experiment_spec
from rlops.api.validation.manifest import validate_manifest
from rlops.api.validation.placement import BIND_SEPARATORS, SLURM_NAME, SLURM_TIME, slurm_seconds
from rlops.api.validation.sweep import validate_sweep_spec

__all__ = [
    "BIND_SEPARATORS",
    "SLURM_NAME",
    "SLURM_TIME",
    "FieldError",
    "pydantic_errors",
    "slurm_seconds",
    "validate_experiment_spec",
    "validate_manifest",
    "validate_sweep_spec",
]
