"""Validation of a Sweep's population-based training settings (algorithm pbt)."""

from __future__ import annotations

from rlops.api.sweep import PopulationBasedTraining, SearchAlgorithm, SweepSpec


def _error(path: str, message: str) -> tuple[str, str]:
    return path, message


def check_pbt(spec: SweepSpec, path: str) -> list[tuple[str, str]]:
    """`pbt` only with algorithm pbt; its bounds; what PBT needs of the rest of the sweep,
    as (field path, message) pairs."""
    if spec.algorithm != SearchAlgorithm.PBT:
        if spec.pbt is None:
            return []
        return [_error(f"{path}.pbt", "only with algorithm pbt")]
    pbt = spec.pbt or PopulationBasedTraining()
    errors = []
    p = f"{path}.pbt"
    if pbt.perturbation_interval < 1:
        errors.append(_error(f"{p}.perturbationInterval", "must be >= 1 (iterations)"))
    if not 0 < pbt.quantile_fraction <= 0.5:
        errors.append(_error(f"{p}.quantileFraction", "must be in (0, 0.5]"))
    if not 0 <= pbt.resample_probability <= 1:
        errors.append(_error(f"{p}.resampleProbability", "must be in [0, 1]"))
    if not spec.parameters:
        errors.append(_error(f"{path}.parameters", "algorithm pbt needs parameters to explore"))
    if spec.max_trials is not None and spec.max_trials < 2:
        errors.append(
            _error(f"{path}.maxTrials", "algorithm pbt needs a population of >= 2 trials")
        )
    for field, wrong, why in (
        ("seedsPerTrial", spec.seeds_per_trial != 1, "must be 1 with algorithm pbt"),
        ("earlyStopping", spec.early_stopping is not None, "not allowed with algorithm pbt"),
        ("paired", bool(spec.paired), "not allowed with algorithm pbt"),
    ):
        if wrong:
            errors.append(_error(f"{path}.{field}", why))
    frequency = spec.template.checkpoint.frequency
    if not 1 <= frequency <= pbt.perturbation_interval:
        errors.append(
            _error(
                f"{path}.template.checkpoint.frequency",
                f"{frequency} is not allowed with algorithm pbt: trials copy each other's "
                f"checkpoints, so checkpoint every 1..{pbt.perturbation_interval} iterations "
                "(pbt.perturbationInterval)",
            )
        )
    return errors
