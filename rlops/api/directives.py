"""`#SBATCH` directives: which long options may appear in a batch script, and who sets them.

sbatch accepts any unambiguous prefix of a long option (`--chd` is `--chdir`), so a
denylist of the options rlops manages is not enough: a directive is accepted only when its
name is, in full, one of `USER_OPTIONS`. The options rlops writes itself (`MANAGED`)
never come from a spec: overriding them would break tracking (the job's name and comment),
signals, requeues or the run directory, or multiply the job (`--array`) or change its
environment (`--export`). Both the validator and the script renderer call `directive_error`.
"""

from __future__ import annotations

import difflib
import re

# Options rlops writes (or that would change what rlops tracks), each with the spec field
# to write instead, if there is one.
MANAGED: dict[str, str] = {
    "job-name": "rlops-<name>-<uid> identifies the job",
    "comment": "it carries the experiment's uid and attempt",
    "output": "output goes to the run directory",
    "error": "output goes to the run directory",
    "input": "rlops runs the job itself",
    "chdir": "write storage.path",
    "open-mode": "rlops runs the job itself",
    "signal": "write placement.slurm.signalSeconds",
    "requeue": "write placement.slurm.maxRequeues",
    "no-requeue": "write placement.slurm.maxRequeues",
    "nodes": "write resources.nodes",
    "ntasks": "write resources",
    "ntasks-per-node": "write resources",
    "cpus-per-task": "write resources",
    "gpus-per-node": "write placement.slurm.gpusPerNode",
    "mem": "write resources.memory",
    "time": "write placement.slurm.timeLimit",
    "partition": "write placement.slurm.partition",
    "account": "write placement.slurm.account",
    "qos": "write placement.slurm.qos",
    "constraint": "write placement.slurm.constraint",
    "array": "write a sweep (rlops submits arrays itself)",
    "export": "the job's environment is rlops'",
    "export-file": "the job's environment is rlops'",
    "get-user-env": "the job's environment is rlops'",
    "propagate": "rlops runs the job itself",
    "parsable": "rlops runs the job itself",
    "wrap": "rlops runs the job itself",
    "wait": "rlops runs the job itself",
    "test-only": "rlops runs the job itself",
    "hold": "rlops runs the job itself",
    "uid": "rlops runs the job itself",
    "gid": "rlops runs the job itself",
    "clusters": "write placement.slurm.cluster",
}
# Options a spec may add with `placement.slurm.extraDirectives`, by their full names.
USER_OPTIONS: frozenset[str] = frozenset({
    "acctg-freq", "batch", "begin", "cluster-constraint", "contiguous", "core-spec",
    "cores-per-socket", "cpu-freq", "cpus-per-gpu", "deadline", "delay-boot", "dependency",
    "distribution", "exclude", "exclusive", "extra", "gpu-bind", "gpu-freq", "gpus",
    "gpus-per-socket", "gpus-per-task", "gres", "gres-flags", "hint", "kill-on-invalid-dep",
    "licenses", "mail-type", "mail-user", "mcs-label", "mem-bind", "mem-per-cpu", "mem-per-gpu",
    "mincpus", "network", "nice", "nodelist", "ntasks-per-core", "ntasks-per-gpu",
    "ntasks-per-socket", "oversubscribe", "power", "prefer", "priority", "profile",
    "reservation", "sockets-per-node", "spread-job", "switches", "thread-spec",
    "threads-per-core", "time-min", "tmp", "tres-bind", "tres-per-task", "use-min-nodes",
    "wckey",
})  # fmt: skip
# Every option that may appear in a rendered script.
ALLOWED: frozenset[str] = USER_OPTIONS | frozenset(MANAGED)
SHAPE = re.compile(r"--([a-z][a-z0-9-]*)(=[A-Za-z0-9_.,:@/+%=\-]+)?")


def option_name(directive: str) -> str:
    """`--name=value` -> `name`."""
    return directive[2:].split("=", 1)[0]


def directive_error(directive: str) -> str | None:
    """Why `directive` may not be an extra `#SBATCH` line of a spec; None when it may."""
    m = SHAPE.fullmatch(directive)
    if m is None:
        return (
            f"{directive!r} is not `--name` or `--name=value` (value: letters, digits and "
            "_ . , : @ / + % = -; no spaces, newlines or shell metacharacters)"
        )
    name = m.group(1)
    if name in MANAGED:
        return f"--{name} is set by rlops ({MANAGED[name]})"
    if name in USER_OPTIONS:
        return None
    shadowed = sorted(full for full in ALLOWED if full.startswith(name))
    if shadowed:
        return (
            f"--{name} is an abbreviation (sbatch would read it as --{' or --'.join(shadowed)}); "
            "write an option's full name"
        )
    close = difflib.get_close_matches(name, sorted(USER_OPTIONS), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"--{name} is not an sbatch option rlops allows{hint}; allowed: " + ", ".join(
        sorted(USER_OPTIONS)
    )
