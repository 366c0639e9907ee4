"""Command trainers: the argv template of `spec.command`, expanded for one run.

A program of the user's own trains instead of RLlib (docs/command-trainers.md). Its argv
may carry placeholders, each a whole `{...}` inside one argument:

    {config.a.b}   the value at `a.b` of `spec.config` (JSON for lists and mappings)
    {overrides}    on its own: one `a.b=value` argument per leaf of `spec.config`, the
                   override grammar of Hydra (`python train.py {overrides}`)
    {seed}         `spec.seed` (empty when unset)
    {runDir}       the run directory

Expansion is pure and shared: validation checks the placeholders, the runtime expands
them. Nothing here runs the program.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_.\-]*)\}")
OVERRIDES = "{overrides}"
FIXED = ("seed", "runDir")
# Hydra's override grammar: a value of these characters needs no quoting.
_HYDRA_PLAIN = re.compile(r"[A-Za-z0-9_.+\-/:]+")


class CommandError(ValueError):
    """A placeholder that cannot be expanded: `index` is the argument's position."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def placeholder_errors(command: list[str], config: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(argument index, message) for every placeholder `expand` could not fill."""
    errors: list[tuple[int, str]] = []
    for index, arg in enumerate(command):
        if OVERRIDES in arg and arg != OVERRIDES:
            errors.append((index, "{overrides} must be an argument on its own"))
            continue
        for name in PLACEHOLDER.findall(arg):
            if name == "overrides" or name in FIXED:
                continue
            if not name.startswith("config."):
                allowed = ", ".join(f"{{{n}}}" for n in ("config.<path>", "overrides", *FIXED))
                errors.append((index, f"unknown placeholder {{{name}}}; allowed: {allowed}"))
            elif _lookup(config, name.removeprefix("config.")) is _MISSING:
                errors.append((index, f"{{{name}}}: spec.config has no {name}"))
    return errors


def expand(
    command: list[str], config: Mapping[str, Any], seed: int | None, run_dir: str
) -> list[str]:
    """The argv with every placeholder filled; CommandError for one that cannot be."""
    for index, message in placeholder_errors(command, config):
        raise CommandError(index, message)
    fixed = {"seed": "" if seed is None else str(seed), "runDir": run_dir}
    argv: list[str] = []
    for arg in command:
        if arg == OVERRIDES:
            argv += [f"{key}={hydra_value(value)}" for key, value in leaves(config)]
            continue

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in fixed:
                return fixed[name]
            return _text(_lookup(config, name.removeprefix("config.")))

        argv.append(PLACEHOLDER.sub(fill, arg))
    return argv


def leaves(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every non-mapping value, in order."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaves(value, f"{path}.")
        else:
            yield path, value


def hydra_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back as the same type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _HYDRA_PLAIN.fullmatch(text) and text not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Missing:
    pass


_MISSING = _Missing()


def _lookup(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
