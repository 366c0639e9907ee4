"""Placement: the Kubernetes and SLURM fields, and SLURM's names, times and container options."""

from __future__ import annotations

import re

from rlops.api.directives import directive_error
from rlops.api.experiment import ContainerRuntime, KubernetesPlacement, SlurmPlacement
from rlops.api.validation.errors import DNS_LABEL, DNS_SUBDOMAIN, FieldError

SLURM_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


SLURM_CONSTRAINT = re.compile(r"[A-Za-z0-9_.\-&|\[\]*():,]+")


SLURM_TIME = re.compile(
    r"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})",
    re.ASCII,
)


CONTAINER_OPTION = re.compile(r"--?[A-Za-z][A-Za-z0-9-]*(=[A-Za-z0-9_.,:@/+%=\-]+)?")


BIND_SEPARATORS = {",", ":"}


SHELL_METACHARACTERS = set("\n\r;&|`$<>\\\"'(){}*?!#~ \t")


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


def check_kubernetes(k8s: KubernetesPlacement, path: str) -> list[FieldError]:
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


def check_slurm(slurm: SlurmPlacement, path: str) -> list[FieldError]:
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
