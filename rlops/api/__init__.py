"""The resource models: the API of rlops, and the only source of its CRDs."""

from rlops.api.base import API_VERSION, GROUP, VERSION, Model
from rlops.api.experiment import (
    Backend,
    BackendRef,
    CheckpointSpec,
    ContainerRuntime,
    EnvironmentSpec,
    ExperimentResult,
    KubernetesPlacement,
    Phase,
    PlacementSpec,
    Progress,
    ResourcesSpec,
    RLExperiment,
    RLExperimentSpec,
    RLExperimentStatus,
    SlurmPlacement,
    StopSpec,
    StorageSpec,
)
from rlops.api.meta import Condition, ObjectMeta
from rlops.api.sweep import (
    AshaVariant,
    Distribution,
    DistributionType,
    EarlyStopping,
    EarlyStoppingType,
    Objective,
    SearchAlgorithm,
    Sweep,
    SweepBackend,
    SweepPhase,
    SweepPlacement,
    SweepSpec,
    SweepStatus,
    TrialCounts,
    TrialSummary,
)
from rlops.api.validation import FieldError, validate_manifest

__all__ = [
    "API_VERSION", "GROUP", "VERSION", "AshaVariant", "Backend", "BackendRef", "CheckpointSpec",
    "Condition",
    "ContainerRuntime", "Distribution", "DistributionType", "EarlyStopping", "EarlyStoppingType",
    "EnvironmentSpec", "ExperimentResult", "FieldError", "KubernetesPlacement", "Model",
    "ObjectMeta", "Objective", "Phase", "PlacementSpec", "Progress", "RLExperiment",
    "RLExperimentSpec", "RLExperimentStatus", "ResourcesSpec", "SearchAlgorithm",
    "SlurmPlacement", "StopSpec", "StorageSpec", "Sweep", "SweepBackend", "SweepPhase",
    "SweepPlacement", "SweepSpec", "SweepStatus", "TrialCounts", "TrialSummary",
    "validate_manifest",
]  # fmt: skip
