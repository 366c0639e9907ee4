"""Pure validation: every error at once, each with its field path and what is allowed."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rlops.api.base import API_VERSION
from rlops.api.catalog import MANAGED_GROUPS, MANAGED_KEYWORDS, Catalog, load_catalog
from rlops.api.classrefs import ENTRY_POINT, ref_errors
from rlops.api.command import placeholder_errors
from rlops.api.directives import directive_error
from rlops.api.experiment import (
    Backend,
    ContainerRuntime,
    KubernetesPlacement,
    RLExperiment,
    RLExperimentSpec,
    SlurmPlacement,
)
from rlops.api.pbt_validation import check_pbt
from rlops.api.sweep import (
    AshaVariant,
    Distribution,
    DistributionType,
    EarlyStoppingType,
    SearchAlgorithm,
    Sweep,
    SweepBackend,
    SweepSpec,
)


@dataclass(frozen=True)
class FieldError:
    """One problem in a manifest."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


KINDS = ("RLExperiment", "Sweep")

# RayJob names are limited by KubeRay (47 characters); trials append `-<index>-s<seed>`.
MAX_EXPERIMENT_NAME = 47
MAX_SWEEP_NAME = 36
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
GYM_ID = re.compile(r"(?:[A-Za-z0-9_.\-]+/)?[A-Za-z0-9_.\-:]+")
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")
SLURM_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
SLURM_CONSTRAINT = re.compile(r"[A-Za-z0-9_.\-&|\[\]*():,]+")
SLURM_TIME = re.compile(
    r"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})",
    re.ASCII,
)
CONTAINER_OPTION = re.compile(r"--?[A-Za-z][A-Za-z0-9-]*(=[A-Za-z0-9_.,:@/+%=\-]+)?")
BIND_SEPARATORS = {",", ":"}
SHELL_METACHARACTERS = set("\n\r;&|`$<>\\\"'(){}*?!#~ \t")
SPEC_ROOTS = set(RLExperimentSpec.model_fields) | {
    f.alias for f in RLExperimentSpec.model_fields.values() if f.alias
}


def validate_manifest(obj: Any, catalog: Catalog | None = None) -> list[FieldError]:
    """Every error in one RLExperiment or Sweep manifest (empty when it is valid)."""
    if not isinstance(obj, dict):
        return [FieldError("", f"a manifest must be a mapping, not {type(obj).__name__}")]
    kind = obj.get("kind")
    errors: list[FieldError] = []
    if kind not in KINDS:
        return [FieldError("kind", f"{kind!r} is not a kind of rlops; allowed: {', '.join(KINDS)}")]
    if obj.get("apiVersion") != API_VERSION:
        errors.append(
            FieldError("apiVersion", f"{obj.get('apiVersion')!r}; allowed: {API_VERSION}")
        )
    model = RLExperiment if kind == "RLExperiment" else Sweep
    body: dict[str, Any] = copy.deepcopy({k: v for k, v in obj.items() if k != "status"})
    parsed: RLExperiment | Sweep | None = None
    # Report the shape errors, then drop the offending fields and parse again, so the
    # semantic checks still report everything else at once.
    for _ in range(10):
        try:
            parsed = model.model_validate(body)
            break
        except ValidationError as exc:
            errors += pydantic_errors(exc)
            if not _drop_error_locations(body, exc):
                break
    if parsed is None:
        return _unique(errors)

    catalog = catalog or load_catalog()
    name = parsed.metadata.name
    if not name:
        errors.append(FieldError("metadata.name", "a name is required"))
    else:
        limit = MAX_EXPERIMENT_NAME if kind == "RLExperiment" else MAX_SWEEP_NAME
        errors += _check_name("metadata.name", name, limit)
    if isinstance(parsed, RLExperiment):
        errors += validate_experiment_spec(parsed.spec, "spec", catalog)
    else:
        errors += validate_sweep_spec(parsed.spec, "spec", catalog)
    return _unique(errors)


def _unique(errors: list[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))


def _drop_error_locations(body: dict[str, Any], exc: ValidationError) -> bool:
    """Remove the fields pydantic rejected; False when nothing could be removed."""
    removed = False
    for err in exc.errors():
        loc = [p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-")]
        if not loc or err["type"] == "missing":
            continue
        node: Any = body
        for part in loc[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        last = loc[-1]
        if isinstance(node, dict) and last in node:
            del node[last]
            removed = True
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = None
            removed = True
    return removed


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check its spelling; nothing unknown is accepted)"
        elif err["type"] == "missing":
            message = "required"
        out.append(FieldError(path, message))
    return out


def _check_name(path: str, name: str, limit: int) -> list[FieldError]:
    errors = []
    if len(name) > limit:
        errors.append(FieldError(path, f"{len(name)} characters; at most {limit} allowed"))
    if not DNS_LABEL.fullmatch(name):
        errors.append(
            FieldError(
                path,
                f"{name!r} is not a valid name: lower-case letters, digits and '-', "
                "starting and ending with a letter or digit",
            )
        )
    return errors


def _one_of(value: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(value, allowed, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"{value!r} is not allowed{hint}; valid: {', '.join(allowed)}"


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
    if spec.image is not None and (not spec.image.strip() or _has_unsafe(spec.image, "/:@.-_")):
        errors.append(FieldError(f"{path}.image", f"{spec.image!r} is not an image reference"))
    placement = spec.placement
    if placement.kubernetes is not None:
        errors += _check_kubernetes(placement.kubernetes, f"{path}.placement.kubernetes")
    if placement.slurm is not None:
        errors += _check_slurm(placement.slurm, f"{path}.placement.slurm")
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
        errors.append(FieldError(f"{path}.algorithm", _one_of(spec.algorithm, algorithms)))
    errors += _check_environment(spec, path)
    not_groups = [g for g, v in spec.config.items() if not isinstance(v, dict)]
    for group in not_groups:
        errors.append(
            FieldError(f"{path}.config.{group}", "a config group is a mapping of keyword: value")
        )
    if spec.algorithm in catalog.algorithms and not not_groups:
        errors += _check_config(spec.config, catalog.groups(spec.algorithm), f"{path}.config")
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
        if _has_control(arg)
    ]
    errors += [FieldError(f"{p}[{i}]", m) for i, m in placeholder_errors(spec.command, spec.config)]
    if spec.environment is not None:
        errors.append(
            FieldError(
                f"{path}.environment", "RLlib algorithms only; a command trainer has its own"
            )
        )
    return errors


def _check_storage(storage: str | None, path: str) -> list[FieldError]:
    if storage is None:
        return []
    if _has_control(storage):
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


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 for c in text)


def _has_unsafe(text: str, extra: str) -> bool:
    return any(not (c.isalnum() or c in extra) for c in text)


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


def _check_config(
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
                FieldError(f"{path}.{group}", "unknown config group " + _one_of(group, allowed))
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
                        f"unknown keyword of {group}(): " + _one_of(keyword, sorted(groups[group])),
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


def slurm_seconds(limit: str) -> int:
    """Seconds in a SLURM time limit (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`)."""
    days = 0
    if "-" in limit:
        d, limit = limit.split("-", 1)
        days = int(d)
        parts = [int(x) for x in limit.split(":")]
        hours, minutes, seconds = ([*parts, 0, 0])[:3]
    else:
        parts = [int(x) for x in limit.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _check_kubernetes(k8s: KubernetesPlacement, path: str) -> list[FieldError]:
    errors = []
    if k8s.queue is not None and not DNS_SUBDOMAIN.fullmatch(k8s.queue):
        errors.append(FieldError(f"{path}.queue", f"{k8s.queue!r} is not a valid LocalQueue name"))
    if k8s.service_account is not None and not DNS_SUBDOMAIN.fullmatch(k8s.service_account):
        errors.append(
            FieldError(f"{path}.serviceAccount", f"{k8s.service_account!r} is not a valid name")
        )
    for field, value in (
        ("ttlSecondsAfterFinished", k8s.ttl_seconds_after_finished),
        ("preRunningDeadlineSeconds", k8s.pre_running_deadline_seconds),
    ):
        if value < 0:
            errors.append(FieldError(f"{path}.{field}", "must be >= 0"))
    if k8s.max_parallel is not None and k8s.max_parallel < 1:
        errors.append(FieldError(f"{path}.maxParallel", "must be >= 1"))
    return errors


def _check_slurm(slurm: SlurmPlacement, path: str) -> list[FieldError]:
    errors = []
    if not DNS_LABEL.fullmatch(slurm.cluster):
        errors.append(
            FieldError(f"{path}.cluster", f"{slurm.cluster!r}: lower-case letters, digits and '-'")
        )
    names: tuple[tuple[str, str | None], ...] = (
        ("partition", slurm.partition),
        ("account", slurm.account),
        ("qos", slurm.qos),
    )
    for field, value in names:
        if value is not None and not SLURM_NAME.fullmatch(value):
            errors.append(
                FieldError(
                    f"{path}.{field}",
                    f"{value!r} is not allowed: letters, digits, '_', '.' and '-' only "
                    "(no spaces, newlines or shell metacharacters)",
                )
            )
    if slurm.constraint is not None and not SLURM_CONSTRAINT.fullmatch(slurm.constraint):
        errors.append(
            FieldError(
                f"{path}.constraint",
                f"{slurm.constraint!r} is not a feature expression "
                "(letters, digits, & | [ ] * ( ) : ,)",
            )
        )
    if slurm.time_limit is not None and not SLURM_TIME.fullmatch(slurm.time_limit):
        errors.append(
            FieldError(
                f"{path}.timeLimit",
                f"{slurm.time_limit!r}; allowed formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, "
                "D-HH:MM:SS",
            )
        )
    for i, directive in enumerate(slurm.extra_directives):
        if (problem := directive_error(directive)) is not None:
            errors.append(FieldError(f"{path}.extraDirectives.{i}", problem))
    for i, option in enumerate(slurm.container_options):
        if not CONTAINER_OPTION.fullmatch(option):
            errors.append(
                FieldError(
                    f"{path}.containerOptions.{i}",
                    f"{option!r} is not `-x`, `--name` or `--name=value` "
                    "without shell metacharacters",
                )
            )
    counts: tuple[tuple[str, int | None], ...] = (
        ("maxRequeues", slurm.max_requeues),
        ("gpusPerNode", slurm.gpus_per_node),
        ("signalSeconds", slurm.signal_seconds),
    )
    for field, count in counts:
        if count is not None and count < 0:
            errors.append(FieldError(f"{path}.{field}", "must be >= 0"))
    if slurm.max_requeues > 0 and slurm.time_limit is None:
        errors.append(
            FieldError(f"{path}.timeLimit", "required when maxRequeues > 0 (jobs split by time)")
        )
    if slurm.python is not None and any(c in SHELL_METACHARACTERS for c in slurm.python):
        errors.append(FieldError(f"{path}.python", "a path without spaces or shell metacharacters"))
    if slurm.trials_per_job > 1 and slurm.container_runtime == ContainerRuntime.PODMAN:
        errors.append(
            FieldError(
                f"{path}.trialsPerJob",
                "packs trials with containerRuntime none, apptainer or singularity; podman runs "
                "one trial per job (use trialsPerJob: 1)",
            )
        )
    return errors


# --- Sweeps -----------------------------------------------------------------------------


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
            FieldError(path, "path must start at a template field: " + _one_of(parts[0], allowed))
        ]
    if parts[0] == "config" and spec.algorithm in catalog.algorithms:
        if len(parts) < 3:
            return [FieldError(path, "config paths are config.<group>.<keyword>[...]")]
        groups = catalog.groups(spec.algorithm)
        errs = _check_config({parts[1]: {parts[2]: None}}, groups, "config")
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
        errors += _check_kubernetes(placement.kubernetes, f"{path}.kubernetes")
    if placement.slurm is not None:
        errors += _check_slurm(placement.slurm, f"{path}.slurm")
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
