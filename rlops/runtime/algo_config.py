"""From an RLExperiment spec to an RLlib AlgorithmConfig.

Config groups are AlgorithmConfig method names: each `spec.config.<group>` mapping is
applied as `config.<group>(**keywords)`. Resources and the seed come from their own
spec fields (validation rejects them inside `spec.config`), so each setting has one place.
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable
from typing import Any

from rlops.api.classrefs import SPEC_CLASS_FIELDS, class_refs
from rlops.api.experiment import EnvironmentSpec, ResourcesSpec, RLExperimentSpec


class ImportRefError(ImportError):
    """An import string that names no importable object; the message says which part."""


def import_ref(ref: str) -> Any:
    """The object named by `package.module:Name` (the name may be dotted)."""
    module_name, _, attr_path = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportRefError(
            f"{ref!r}: module {exc.name!r} is not on the import path (RLOPS_PYTHONPATH, the "
            "manifest's directory, the working directory; in an image: installed)"
        ) from exc
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            raise ImportRefError(f"{ref!r}: module {module_name!r} has no {attr_path!r}")
        obj = getattr(obj, attr)
    return obj


def resolve_classes(config: dict[str, Any]) -> dict[str, Any]:
    """`spec.config` with its class-valued settings (rlops.api.classrefs) imported."""
    resolved = copy.deepcopy(config)
    for path, ref in class_refs(config):
        group, keyword, *rest = path.replace("[", ".[").split(".")
        target = resolved[group]
        if keyword == "rl_module_spec":
            target[keyword] = _module_spec(target[keyword])
        elif rest:  # callbacks.<key>[i]
            index = int(rest[0].strip("[]"))
            target[keyword][index] = import_ref(ref)
        else:
            target[keyword] = import_ref(ref)
    return resolved


def _module_spec(value: Any) -> Any:
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    if isinstance(value, RLModuleSpec):
        return value
    fields = dict(value) if isinstance(value, dict) else {"module_class": value}
    for field in SPEC_CLASS_FIELDS:
        if isinstance(fields.get(field), str):
            fields[field] = import_ref(fields[field])
    return RLModuleSpec(**fields)


def import_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(path inside spec.config, message) for every class-valued setting that does not import."""
    problems = []
    for path, ref in class_refs(config):
        if not isinstance(ref, str):
            continue
        try:
            import_ref(ref)
        except ImportError as exc:
            problems.append((path, str(exc)))
    return problems


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """The callable named by `package.module:callable` (attributes may be dotted)."""
    obj = import_ref(entry_point)
    if not callable(obj):
        raise TypeError(f"spec.environment.entryPoint {entry_point!r} is not callable")
    return obj  # type: ignore[no-any-return]


def register_environment(env: EnvironmentSpec) -> str:
    """The env name RLlib should create; custom creators are registered under their entry point."""
    if env.entry_point is None:
        assert env.id is not None  # validation guarantees exactly one of them
        return env.id
    from ray.tune.registry import register_env

    creator = load_entry_point(env.entry_point)
    register_env(env.entry_point, creator)
    return env.entry_point


def build_config(spec: RLExperimentSpec, env_name: str) -> Any:
    """The AlgorithmConfig that trains `spec` (Ray need not be running)."""
    from ray.tune.registry import get_trainable_cls

    assert spec.algorithm is not None and spec.environment is not None  # validated: RLlib run
    config = get_trainable_cls(spec.algorithm).get_default_config()  # type: ignore[no-untyped-call]
    config = config.environment(env_name, env_config=dict(spec.environment.config))
    for group, keywords in resolve_classes(spec.config).items():
        config = getattr(config, group)(**keywords)
    return apply_resources(config, spec.resources, spec.seed)


def apply_resources(config: Any, resources: ResourcesSpec, seed: int | None) -> Any:
    config = config.env_runners(
        num_env_runners=resources.env_runners,
        num_envs_per_env_runner=resources.envs_per_runner,
        num_cpus_per_env_runner=resources.cpus_per_runner,
    )
    config = config.learners(
        num_learners=resources.learners, num_gpus_per_learner=resources.gpus_per_learner
    )
    config = config.resources(num_cpus_for_main_process=resources.driver_cpus)
    if seed is not None:
        config = config.debugging(seed=seed)
    return config


def local_cpus(resources: ResourcesSpec) -> int:
    """CPUs a local Ray needs: driver, env runners and CPU-only remote learners."""
    cpu_learners = resources.learners if resources.gpus_per_learner == 0 else 0
    return max(1, math.ceil(resources.total_cpus() + cpu_learners))
