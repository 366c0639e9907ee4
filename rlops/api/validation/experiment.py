"""An RLExperiment's spec: trainer (RLlib or command), config, resources, stop, storage."""

from __future__ import annotations

import re
from typing import Any

from rlops.api.catalog import MANAGED_GROUPS, MANAGED_KEYWORDS, Catalog
from rlops.api.classrefs import ENTRY_POINT, ref_errors
from rlops.api.command import placeholder_errors
from rlops.api.experiment import Backend, RLExperimentSpec
from rlops.api.validation.errors import (
    DNS_SUBDOMAIN,
    FieldError,
    has_control,
    has_unsafe,
    one_of,
)
from rlops.api.validation.placement import (
    BIND_SEPARATORS,
    SLURM_TIME,
    check_kubernetes,
    check_slurm,
    slurm_seconds,
)

GYM_ID = re.compile(r"(?:[A-Za-z0-9_.\-]+/)?[A-Za-z0-9_.\-:]+")


QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")


def validate_experiment_spec(
    spec: RLExperimentSpec, path: str, catalog: Catalog
) -> list[FieldError]:
    errors: list[FieldError] = []
    if (spec.algorithm is None) == (spec.command is None):
        errors.append(
            FieldError(
                f"{path}.algorithm",
                "set exactly one of `algorithm` (an RLlib algorithm) or `command` "
                "(a training program of your own)",
            )
        )
    if spec.command is not None:
        errors += _check_command(spec, path)
    elif spec.algorithm is not None:
        errors += _check_rllib(spec, path, catalog)
    errors += _check_resources(spec, f"{path}.resources")
    errors += _check_stop(spec, path)
    ck = spec.checkpoint
    if ck.frequency < 0:
        errors.append(FieldError(f"{path}.checkpoint.frequency", "must be >= 0 (0: at the end)"))
    if ck.keep is not None and ck.keep < 1:
        errors.append(FieldError(f"{path}.checkpoint.keep", "must be >= 1 when set"))
    if not ck.score_attribute.strip():
        errors.append(FieldError(f"{path}.checkpoint.scoreAttribute", "must not be empty"))
    if spec.seed is not None and spec.seed < 0:
        errors.append(FieldError(f"{path}.seed", "must be >= 0"))
    errors += _check_storage(spec.storage.path, f"{path}.storage.path")
    errors += _check_claim(spec.storage.path, spec.storage.persistent_volume_claim, path)
    if spec.image is not None and (not spec.image.strip() or has_unsafe(spec.image, "/:@.-_")):
        errors.append(FieldError(f"{path}.image", f"{spec.image!r} is not an image reference"))
    placement = spec.placement
    if placement.kubernetes is not None:
        errors += check_kubernetes(placement.kubernetes, f"{path}.placement.kubernetes")
    if placement.slurm is not None:
        errors += check_slurm(placement.slurm, f"{path}.placement.slurm")
        if placement.slurm.trials_per_job > 1 and spec.resources.nodes > 1:
            errors.append(
                FieldError(
                    f"{path}.placement.slurm.trialsPerJob",
                    f"packs trials onto one node; resources.nodes is {spec.resources.nodes} "
                    "(use trialsPerJob: 1 for multi-node trials)",
                )
            )
    if placement.backend == Backend.SLURM and placement.slurm is None:
        errors.append(
            FieldError(f"{path}.placement.slurm", "required when backend is slurm (its cluster)")
        )
    return errors


def _check_rllib(spec: RLExperimentSpec, path: str, catalog: Catalog) -> list[FieldError]:
    assert spec.algorithm is not None
    errors: list[FieldError] = []
    if spec.algorithm not in catalog.algorithms:
        algorithms = catalog.algorithm_names()
        errors.append(FieldError(f"{path}.algorithm", one_of(spec.algorithm, algorithms)))
    errors += _check_environment(spec, path)
    not_groups = [g for g, v in spec.config.items() if not isinstance(v, dict)]
    for group in not_groups:
        errors.append(
            FieldError(f"{path}.config.{group}", "a config group is a mapping of keyword: value")
        )
    if spec.algorithm in catalog.algorithms and not not_groups:
        errors += check_config(spec.config, catalog.groups(spec.algorithm), f"{path}.config")
    errors += [FieldError(f"{path}.config.{p}", m) for p, m in ref_errors(spec.config)]
    return errors


def _check_command(spec: RLExperimentSpec, path: str) -> list[FieldError]:
    assert spec.command is not None
    p = f"{path}.command"
    if not spec.command or not spec.command[0].strip():
        return [FieldError(p, "a program and its arguments, e.g. [python, train.py]")]
    errors = [
        FieldError(f"{p}[{i}]", "must not contain control characters (newline, NUL, ...)")
        for i, arg in enumerate(spec.command)
        if has_control(arg)
    ]
    errors += [FieldError(f"{p}[{i}]", m) for i, m in placeholder_errors(spec.command, spec.config)]
    if spec.environment is not None:
        errors.append(
            FieldError(
                f"{path}.environment", "RLlib algorithms only; a command trainer has its own"
            )
        )
    return errors


def _check_shared_path(storage: str | None, path: str) -> list[FieldError]:
    if storage is None:
        return []
    if has_control(storage):
        return [FieldError(path, "must not contain control characters")]
    if storage.startswith("/") and (bad := sorted(set(storage) & BIND_SEPARATORS)):
        return [
            FieldError(
                path,
                f"{storage!r} contains {' and '.join(repr(c) for c in bad)}: a shared path "
                "reaches a container's --bind, where ',' separates mounts and ':' the target",
            )
        ]
    return []


STORE_SCHEMES = ("s3", "gs")  # object stores the runtime reaches through pyarrow.fs


def _check_storage(storage: str | None, path: str) -> list[FieldError]:
    if storage is None or "://" not in storage:
        return _check_shared_path(storage, path)
    scheme, _, rest = storage.partition("://")
    if scheme not in STORE_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in STORE_SCHEMES)
        return [FieldError(path, f"{scheme}:// is not a supported store; use a path or {allowed}")]
    if not rest.split("/", 1)[0] or has_control(rest) or " " in rest:
        return [FieldError(path, f"{storage!r}: expected {scheme}://<bucket>[/<prefix>]")]
    return []


def _check_claim(storage: str | None, claim: str | None, path: str) -> list[FieldError]:
    """storage.persistentVolumeClaim: a claim name, mounted at a path (never an object store)."""
    if claim is None:
        return []
    where = f"{path}.storage.persistentVolumeClaim"
    if len(claim) > 253 or not DNS_SUBDOMAIN.fullmatch(claim):
        return [FieldError(where, f"{claim!r} is not a PersistentVolumeClaim name (DNS subdomain)")]
    if storage is not None and not storage.startswith("/"):
        return [FieldError(where, "a claim is mounted at storage.path, which must be absolute")]
    return []


def _check_environment(spec: RLExperimentSpec, path: str) -> list[FieldError]:
    env = spec.environment
    p = f"{path}.environment"
    if env is None:
        return [FieldError(p, "required for an RLlib algorithm: `id` or `entryPoint`")]
    if (env.id is None) == (env.entry_point is None):
        return [FieldError(p, "set exactly one of `id` (a Gymnasium id) or `entryPoint`")]
    if env.entry_point is not None and not ENTRY_POINT.fullmatch(env.entry_point):
        return [
            FieldError(
                f"{p}.entryPoint",
                f"{env.entry_point!r} is not `package.module:callable` "
                "(dotted module, one colon, a callable name)",
            )
        ]
    if env.id is not None and not GYM_ID.fullmatch(env.id):
        return [FieldError(f"{p}.id", f"{env.id!r} is not a Gymnasium id such as CartPole-v1")]
    return []


def check_config(
    config: dict[str, dict[str, Any]], groups: dict[str, list[str]], path: str
) -> list[FieldError]:
    errors = []
    for group, settings in config.items():
        if group in MANAGED_GROUPS:
            errors.append(
                FieldError(f"{path}.{group}", f"set by rlops; write {MANAGED_GROUPS[group]}")
            )
            continue
        if group not in groups:
            allowed = sorted(g for g in groups if g not in MANAGED_GROUPS)
            errors.append(
                FieldError(f"{path}.{group}", "unknown config group " + one_of(group, allowed))
            )
            continue
        for keyword in settings:
            if (group, keyword) in MANAGED_KEYWORDS:
                errors.append(
                    FieldError(
                        f"{path}.{group}.{keyword}",
                        f"set by rlops; write {MANAGED_KEYWORDS[group, keyword]}",
                    )
                )
            elif keyword not in groups[group]:
                errors.append(
                    FieldError(
                        f"{path}.{group}.{keyword}",
                        f"unknown keyword of {group}(): " + one_of(keyword, sorted(groups[group])),
                    )
                )
    return errors


def _check_resources(spec: RLExperimentSpec, path: str) -> list[FieldError]:
    r = spec.resources
    errors = []
    rules: list[tuple[str, float, bool]] = [
        ("envRunners", r.env_runners, False),
        ("envsPerRunner", r.envs_per_runner, True),
        ("cpusPerRunner", r.cpus_per_runner, True),
        ("learners", r.learners, False),
        ("gpusPerLearner", r.gpus_per_learner, False),
        ("driverCpus", r.driver_cpus, True),
        ("nodes", r.nodes, True),
    ]
    for field, value, strictly_positive in rules:
        if strictly_positive and value <= 0:
            errors.append(FieldError(f"{path}.{field}", f"{value} is not allowed; must be > 0"))
        elif value < 0:
            errors.append(FieldError(f"{path}.{field}", f"{value} is not allowed; must be >= 0"))
    if r.memory is not None and not QUANTITY.fullmatch(r.memory):
        errors.append(
            FieldError(f"{path}.memory", f"{r.memory!r} is not a quantity such as 512Mi or 4Gi")
        )
    return errors


def _check_stop(spec: RLExperimentSpec, path: str) -> list[FieldError]:
    stop = spec.stop
    p = f"{path}.stop"
    if stop.is_empty() and spec.command is None:
        return [
            FieldError(
                p,
                "at least one criterion is required: timesteps, episodeReturnMean, "
                "iterations, wallTimeSeconds",
            )
        ]
    errors = []
    for field, value in (
        ("timesteps", stop.timesteps),
        ("iterations", stop.iterations),
        ("wallTimeSeconds", stop.wall_time_seconds),
    ):
        if value is not None and value <= 0:
            errors.append(FieldError(f"{p}.{field}", f"{value} is not allowed; must be > 0"))
    batch = _batch_size(spec)
    if stop.timesteps is not None and batch is not None and 0 < stop.timesteps < batch:
        errors.append(
            FieldError(
                f"{p}.timesteps",
                f"{stop.timesteps} is below one iteration's train_batch_size ({batch}): "
                "contradictory; raise timesteps or lower the batch size",
            )
        )
    if stop.iterations is not None and spec.checkpoint.frequency > stop.iterations:
        errors.append(
            FieldError(
                f"{path}.checkpoint.frequency",
                f"{spec.checkpoint.frequency} exceeds stop.iterations ({stop.iterations}): "
                "no periodic checkpoint would ever be written",
            )
        )
    slurm = spec.placement.slurm
    if (
        spec.placement.backend == Backend.SLURM
        and slurm is not None
        and slurm.time_limit
        and stop.wall_time_seconds is not None
        and SLURM_TIME.fullmatch(slurm.time_limit)
    ):
        budget = slurm_seconds(slurm.time_limit) * (slurm.max_requeues + 1)
        if stop.wall_time_seconds > budget:
            errors.append(
                FieldError(
                    f"{p}.wallTimeSeconds",
                    f"{stop.wall_time_seconds:g}s exceeds what the SLURM time limit allows "
                    f"({budget}s over {slurm.max_requeues + 1} job(s)): contradictory; raise "
                    "placement.slurm.timeLimit or maxRequeues",
                )
            )
    return errors


def _batch_size(spec: RLExperimentSpec) -> int | None:
    training = spec.config.get("training", {})
    if spec.command is not None or not isinstance(training, dict):
        return None
    for key in ("train_batch_size_per_learner", "train_batch_size"):
        value = training.get(key)
        if isinstance(value, int):
            return value * max(spec.resources.learners, 1) if key.endswith("learner") else value
    return None
