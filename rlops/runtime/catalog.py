"""Generate `rlops/api/rllib_catalog.json` from the installed RLlib.

The catalog records every algorithm name and, per algorithm, each AlgorithmConfig
builder method (a "config group") with the keywords it accepts, so that the
Ray-free parts of rlops can validate `spec.config`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

# Builder methods whose first argument is positional (env id) still count as groups.
_POSITIONAL_OK = {"environment"}


def _keywords(cls: type, method: str) -> list[str] | None:
    from ray.rllib.algorithms.algorithm_config import NotProvided  # type: ignore[attr-defined]

    names: list[str] = []
    has_var_kw = False
    for klass in cls.__mro__:
        fn = klass.__dict__.get(method)
        if fn is None:
            continue
        params = list(inspect.signature(fn).parameters.values())[1:]
        if not params:
            return None
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                has_var_kw = True
                continue
            if p.kind is p.VAR_POSITIONAL:
                return None
            if p.default is not NotProvided and method not in _POSITIONAL_OK:
                # Not a builder method, or a deprecated keyword: skip deprecated ones.
                if p.name.startswith("_") or p.default in (-1, "DEPRECATED_VALUE"):
                    continue
                return None
            if p.name.startswith("_") or p.default == -1:
                continue
            if p.name not in names:
                names.append(p.name)
        if not has_var_kw:
            break
        has_var_kw = False
    return sorted(names)


def build_catalog() -> dict[str, Any]:
    import ray
    from ray.rllib.algorithms.registry import ALGORITHMS

    algorithms: dict[str, dict[str, list[str]]] = {}
    for name in sorted(ALGORITHMS):
        algo_cls = ALGORITHMS[name]()[0]  # type: ignore[no-untyped-call]
        config_cls = type(algo_cls.get_default_config())
        groups: dict[str, list[str]] = {}
        for method, _fn in inspect.getmembers(config_cls, inspect.isfunction):
            if method.startswith("_") or method in ("update_from_dict", "copy", "to_dict"):
                continue
            keywords = _keywords(config_cls, method)
            if keywords:
                groups[method] = keywords
        algorithms[name] = groups
    return {"ray_version": ray.__version__, "algorithms": algorithms}


def write_catalog(path: Path | None = None) -> Path:
    target = path or Path(__file__).parents[1] / "api" / "rllib_catalog.json"
    target.write_text(json.dumps(build_catalog(), indent=1, sort_keys=True) + "\n")
    return target


if __name__ == "__main__":
    print(write_catalog())
