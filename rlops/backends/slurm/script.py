"""What every batch script of rlops is made of: its `#SBATCH` directives and safe values.

Every value that reaches the script is shell-quoted (`shlex.quote`) or checked to be
a plain token; `#SBATCH` directives are re-checked here even though the API validator
already rejects bad ones, because a script is a program and a directive with a
newline in it would be one more line of that program.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import jinja2

from rlops.api.directives import ALLOWED, directive_error
from rlops.api.experiment import RLExperiment, SlurmPlacement
from rlops.api.validation import BIND_SEPARATORS, SLURM_NAME, SLURM_TIME
from rlops.backends.slurm.settings import SlurmSettings

JOB_PREFIX = "rlops"
UID_COMMENT = "rlops-uid="
# A directive value: no whitespace, quotes or shell metacharacters, ever.
PLAIN = re.compile(r"[A-Za-z0-9_.,:@/+%=\-\[\]&|*()]+")
PATH = re.compile(r"/[A-Za-z0-9_.,:@/+%=\-]*")

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("rlops.backends.slurm", "templates"),
    autoescape=False,  # a shell script, not HTML: values are quoted with shlex instead
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
)


class ScriptError(ValueError):
    """An experiment that cannot be turned into a safe batch script."""


def job_name(experiment: RLExperiment) -> str:
    """`rlops-<name>-<uid8>`: what the bridge looks for before it submits (idempotency)."""
    meta = experiment.metadata
    uid = (meta.uid or "local").replace("-", "")[:8]
    return f"{JOB_PREFIX}-{meta.name or 'experiment'}-{uid}"


def default_run_dir(experiment: RLExperiment, settings: SlurmSettings) -> Path:
    """`<base>/<namespace>/<name>`: the spec's storage path (a shared path), else the run root."""
    meta = experiment.metadata
    storage = experiment.spec.storage.path
    base = Path(storage) if storage and storage.startswith("/") else settings.run_root
    return base / (meta.namespace or "default") / (meta.name or "experiment")


def slurm_placement(experiment: RLExperiment) -> SlurmPlacement:
    return experiment.spec.placement.slurm or SlurmPlacement()


def directive(flag: str, value: object | None = None) -> str:
    if flag not in ALLOWED:
        raise ScriptError(f"--{flag} is not an sbatch option rlops writes")
    if value is None:
        return f"--{flag}"
    text = str(value)
    if not PLAIN.fullmatch(text):
        raise ScriptError(
            f"--{flag}: {text!r} is not allowed in a directive (letters, digits and "
            "_ . , : @ / + % = - only; no spaces, newlines, quotes or shell metacharacters)"
        )
    return f"--{flag}={text}"


def _memory(quantity: str) -> str:
    """A Kubernetes quantity as `--mem` (SLURM takes K, M, G, T; megabytes by default)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    if not m:
        raise ScriptError(f"resources.memory: {quantity!r} is not a quantity such as 4Gi")
    number, unit = float(m.group(1)), m.group(2) or ""
    mib = 2**20
    factor = {"": 1 / mib, "k": 1e3 / mib, "Ki": 1 / 2**10, "M": 1e6 / mib, "Mi": 1,
              "G": 1e9 / mib, "Gi": 2**10, "T": 1e12 / mib, "Ti": 2**20}[unit]  # fmt: skip
    return f"{max(1, math.ceil(number * factor))}M"


def directives(experiment: RLExperiment, run_dir: Path) -> list[str]:
    """The `#SBATCH` options rlops manages, in a fixed order."""
    spec = experiment.spec
    slurm = slurm_placement(experiment)
    nodes = max(1, spec.resources.nodes)
    out = [
        directive("job-name", job_name(experiment)),
        directive("comment", UID_COMMENT + (experiment.metadata.uid or "local")),
        directive("output", safe_path(run_dir / "slurm-%j.out", "output")),
        directive("chdir", safe_path(run_dir, "chdir")),
        directive("open-mode", "append"),
        directive("requeue"),
        directive("nodes", nodes),
        directive("ntasks-per-node", 1),
        directive("cpus-per-task", max(1, math.ceil(spec.resources.total_cpus() / nodes))),
    ]
    gpus = slurm.gpus_per_node
    if gpus is None and spec.resources.total_gpus() > 0:
        gpus = math.ceil(spec.resources.total_gpus() / nodes)
    if gpus:
        out.append(directive("gpus-per-node", gpus))
    if spec.resources.memory:
        out.append(directive("mem", _memory(spec.resources.memory)))
    for flag, value in (("partition", slurm.partition), ("account", slurm.account),
                        ("qos", slurm.qos)):  # fmt: skip
        if value is not None:
            if not SLURM_NAME.fullmatch(value):
                raise ScriptError(f"placement.slurm.{flag}: {value!r}: letters, digits, _ . -")
            out.append(directive(flag, value))
    if slurm.time_limit is not None:
        if not SLURM_TIME.fullmatch(slurm.time_limit):
            raise ScriptError(f"placement.slurm.timeLimit: {slurm.time_limit!r} is not a time")
        out.append(directive("time", slurm.time_limit))
        out.append(directive("signal", f"B:USR1@{slurm.signal_seconds}"))
    if slurm.constraint is not None:
        out.append(directive("constraint", slurm.constraint))
    return out


def safe_path(path: Path, what: str) -> str:
    text = str(path)
    if not PATH.fullmatch(text):
        raise ScriptError(
            f"{what}: {text!r} must be an absolute path of letters, digits and _ . , : @ / + % = -"
        )
    return text


def extra_directives(slurm: SlurmPlacement) -> list[str]:
    out = []
    for i, directive in enumerate(slurm.extra_directives):
        if (problem := directive_error(directive)) is not None:
            raise ScriptError(f"placement.slurm.extraDirectives.{i}: {problem}")
        out.append(directive)
    return out


def bind_path(path: Path) -> str:
    """A run directory as a container `--bind` source: no `,` (next mount) or `:` (target)."""
    text = str(path)
    if set(text) & BIND_SEPARATORS:
        raise ScriptError(f"storage.path: {text!r} contains ',' or ':', which split a --bind")
    return text


def comment_text(text: str) -> str:
    """Text for a `#` comment line: anything but a plain character becomes `?`."""
    return re.sub(r"[^A-Za-z0-9_.:/-]", "?", text)
