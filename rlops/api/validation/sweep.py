"""A Sweep's spec: its template, parameters and distributions, pairing, search, placement."""

from __future__ import annotations

import re
from typing import Any

from rlops.api.catalog import Catalog
from rlops.api.experiment import RLExperimentSpec
from rlops.api.pbt_validation import check_pbt
from rlops.api.sweep import (
    AshaVariant,
    Distribution,
    DistributionType,
    EarlyStoppingType,
    SearchAlgorithm,
    SweepBackend,
    SweepSpec,
)
from rlops.api.validation.errors import FieldError, one_of
from rlops.api.validation.experiment import check_config, validate_experiment_spec
from rlops.api.validation.placement import check_kubernetes, check_slurm

SPEC_ROOTS = set(RLExperimentSpec.model_fields) | {
    f.alias for f in RLExperimentSpec.model_fields.values() if f.alias
}


def validate_sweep_spec(spec: SweepSpec, path: str, catalog: Catalog) -> list[FieldError]:
    errors = validate_experiment_spec(spec.template, f"{path}.template", catalog)
    template = spec.template.dump()
    grid_keys = set()
    for key, dist in spec.parameters.items():
        p = f"{path}.parameters.{key}"
        errors += _check_distribution(dist, p)
        errors += _check_parameter_path(key, template, spec.template, catalog, p)
        if dist.type == DistributionType.GRID:
            grid_keys.add(key)
        elif spec.algorithm == SearchAlgorithm.GRID and dist.type != DistributionType.CHOICE:
            errors.append(
                FieldError(
                    p,
                    f"{dist.type.value} cannot be enumerated by algorithm grid; use grid/choice "
                    "values, or algorithm random or tpe",
                )
            )
    seen: set[str] = set()
    for i, group in enumerate(spec.paired):
        p = f"{path}.paired.{i}"
        lengths = set()
        for key in group:
            if key not in grid_keys:
                errors.append(
                    FieldError(p, f"{key!r} is not a grid parameter; paired keys must be")
                )
            else:
                values = spec.parameters[key].values or []
                lengths.add(len(values))
            if key in seen:
                errors.append(FieldError(p, f"{key!r} is in more than one paired group"))
            seen.add(key)
        if len(lengths) > 1:
            errors.append(
                FieldError(p, f"paired keys need as many values each; got {sorted(lengths)}")
            )
    if spec.algorithm != SearchAlgorithm.GRID and spec.max_trials is None:
        errors.append(
            FieldError(f"{path}.maxTrials", f"required for algorithm {spec.algorithm.value}")
        )
    for field, value, minimum in (
        ("maxTrials", spec.max_trials, 1),
        ("parallelism", spec.parallelism, 1),
        ("maxAttempts", spec.max_attempts, 1),
        ("seedsPerTrial", spec.seeds_per_trial, 1),
        ("maxFailedTrials", spec.max_failed_trials, 0),
    ):
        if value is not None and value < minimum:
            errors.append(
                FieldError(f"{path}.{field}", f"{value} is not allowed; must be >= {minimum}")
            )
    es = spec.early_stopping
    if es is not None:
        if es.grace_period < 1:
            errors.append(FieldError(f"{path}.earlyStopping.gracePeriod", "must be >= 1"))
        if es.reduction_factor <= 1:
            errors.append(FieldError(f"{path}.earlyStopping.reductionFactor", "must be > 1"))
        if es.min_trials < 1:
            errors.append(FieldError(f"{path}.earlyStopping.minTrials", "must be >= 1"))
        if es.type == EarlyStoppingType.MEDIAN and es.variant == AshaVariant.PROMOTION:
            errors.append(
                FieldError(
                    f"{path}.earlyStopping.variant",
                    "promotion is not allowed with type median; it is an ASHA variant "
                    "(allowed with median: stopping)",
                )
            )
    goal = spec.objective.goal
    stop_return = spec.template.stop.episode_return_mean
    if (
        goal is not None
        and stop_return is not None
        and spec.objective.metric == "episode_return_mean"
        and spec.objective.mode == "max"
        and stop_return < goal
    ):
        errors.append(
            FieldError(
                f"{path}.objective.goal",
                f"{goal:g} is above template.stop.episodeReturnMean ({stop_return:g}): "
                "contradictory, trials stop before they could reach the goal",
            )
        )
    errors += _check_sweep_placement(spec, f"{path}.placement")
    errors += [FieldError(field, message) for field, message in check_pbt(spec, path)]
    return errors


def _check_distribution(dist: Distribution, path: str) -> list[FieldError]:
    t = dist.type
    errors = []

    def need(*fields: str) -> bool:
        missing = [f for f in fields if getattr(dist, _snake(f)) is None]
        for f in missing:
            errors.append(FieldError(f"{path}.{f}", f"required for type {t.value}"))
        return not missing

    if t in (DistributionType.GRID, DistributionType.CHOICE):
        if not dist.values:
            errors.append(
                FieldError(f"{path}.values", f"a non-empty list is required for {t.value}")
            )
    elif t in (DistributionType.UNIFORM, DistributionType.LOGUNIFORM, DistributionType.INT,
               DistributionType.RANDINT):  # fmt: skip
        if need("low", "high"):
            assert dist.low is not None and dist.high is not None
            if dist.low > dist.high or (dist.low == dist.high and t not in (
                DistributionType.INT, DistributionType.RANDINT)):  # fmt: skip
                errors.append(
                    FieldError(
                        f"{path}.low", f"low ({dist.low:g}) must be below high ({dist.high:g})"
                    )
                )
            if t == DistributionType.LOGUNIFORM and dist.low <= 0:
                errors.append(FieldError(f"{path}.low", "loguniform needs low > 0"))
            if t in (DistributionType.INT, DistributionType.RANDINT) and not (
                float(dist.low).is_integer() and float(dist.high).is_integer()
            ):
                errors.append(FieldError(f"{path}.low", "int bounds must be whole numbers"))
    elif t in (DistributionType.NORMAL, DistributionType.TRUNCNORMAL):
        if need("mean", "std") and dist.std is not None and dist.std <= 0:
            errors.append(FieldError(f"{path}.std", "must be > 0"))
        if t == DistributionType.TRUNCNORMAL and need("low", "high"):
            assert dist.low is not None and dist.high is not None
            if dist.low >= dist.high:
                errors.append(FieldError(f"{path}.low", "low must be below high"))
    if dist.step is not None and dist.step <= 0:
        errors.append(FieldError(f"{path}.step", "must be > 0"))
    if dist.values is not None and t not in (DistributionType.GRID, DistributionType.CHOICE):
        errors.append(FieldError(f"{path}.values", f"only for grid and choice, not {t.value}"))
    return errors


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _check_parameter_path(
    key: str, template: dict[str, Any], spec: RLExperimentSpec, catalog: Catalog, path: str
) -> list[FieldError]:
    parts = key.split(".")
    if not all(parts):
        return [FieldError(path, f"{key!r} is not a dotted path")]
    if parts[0] not in SPEC_ROOTS:
        allowed = sorted(f.alias or n for n, f in RLExperimentSpec.model_fields.items())
        return [
            FieldError(path, "path must start at a template field: " + one_of(parts[0], allowed))
        ]
    if parts[0] == "config" and spec.algorithm in catalog.algorithms:
        if len(parts) < 3:
            return [FieldError(path, "config paths are config.<group>.<keyword>[...]")]
        groups = catalog.groups(spec.algorithm)
        errs = check_config({parts[1]: {parts[2]: None}}, groups, "config")
        if errs:
            return [FieldError(path, e.message) for e in errs]
    # Walk as far as the template goes; list indices must exist in the template's list.
    node: Any = template
    for depth, part in enumerate(parts):
        if isinstance(node, list):
            if not part.isdigit():
                return [FieldError(path, f"{'.'.join(parts[:depth])} is a list: use an index")]
            if int(part) >= len(node):
                return [
                    FieldError(
                        path,
                        f"index {part} is out of range: {'.'.join(parts[:depth])} has "
                        f"{len(node)} element(s) in the template",
                    )
                ]
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                return []  # A new key: the trial adds it.
            node = node[part]
        else:
            return [
                FieldError(path, f"{'.'.join(parts[:depth])} is a value, not a mapping or list")
            ]
    return []


def _check_sweep_placement(spec: SweepSpec, path: str) -> list[FieldError]:
    placement = spec.placement
    errors = []
    if placement.kubernetes is not None:
        errors += check_kubernetes(placement.kubernetes, f"{path}.kubernetes")
    if placement.slurm is not None:
        errors += check_slurm(placement.slurm, f"{path}.slurm")
    if placement.backend == SweepBackend.BURST:
        k8s = placement.kubernetes
        if k8s is None or k8s.max_parallel is None:
            errors.append(
                FieldError(f"{path}.kubernetes.maxParallel", "required for burst placement")
            )
        if placement.slurm is None and spec.template.placement.slurm is None:
            errors.append(FieldError(f"{path}.slurm", "required for burst placement (its cluster)"))
    if placement.backend == SweepBackend.SLURM and (
        placement.slurm is None and spec.template.placement.slurm is None
    ):
        errors.append(FieldError(f"{path}.slurm", "required when backend is slurm (its cluster)"))
    if placement.burst_after_seconds is not None:
        if placement.burst_after_seconds < 1:
            errors.append(FieldError(f"{path}.burstAfterSeconds", "must be >= 1"))
        if placement.backend != SweepBackend.BURST:
            errors.append(FieldError(f"{path}.burstAfterSeconds", "only for backend burst"))
    return errors
