"""Class-valued RLlib settings given as `package.module:Name` strings.

A manifest cannot hold a Python class, so the few AlgorithmConfig settings that take one
are written as import strings and resolved by the runtime before the config is built:

    callbacks.callbacks_class     `pkg.mod:MyCallbacks` (or a list of them)
    callbacks.on_<event>          `pkg.mod:function` (or a list of them)
    rl_module.rl_module_spec      `pkg.mod:MyModule`, or a mapping with `module_class` (and
                                  `catalog_class`) strings and the RLModuleSpec's other fields

This module only finds them and checks their form; importing is the runtime's job
(`rlops.runtime.algo_config`), and `rlops validate` checks they import.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

ENTRY_POINT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
SPEC_CLASS_FIELDS = ("module_class", "catalog_class")


def class_refs(config: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(path inside `spec.config`, value) of every setting that names a class or function."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, Mapping):
        for key, value in callbacks.items():
            if key == "callbacks_class" or key.startswith("on_"):
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        yield f"callbacks.{key}[{i}]", item
                else:
                    yield f"callbacks.{key}", value
    rl_module = config.get("rl_module")
    if isinstance(rl_module, Mapping) and "rl_module_spec" in rl_module:
        spec = rl_module["rl_module_spec"]
        if isinstance(spec, Mapping):
            for field in SPEC_CLASS_FIELDS:
                if field in spec:
                    yield f"rl_module.rl_module_spec.{field}", spec[field]
        else:
            yield "rl_module.rl_module_spec", spec


def ref_errors(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for every class-valued setting that is not an import string."""
    return [
        (path, f"{value!r} is not `package.module:Name` (a dotted module, one colon, a name)")
        for path, value in class_refs(config)
        if not (isinstance(value, str) and ENTRY_POINT.fullmatch(value))
    ]
