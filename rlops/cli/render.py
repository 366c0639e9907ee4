"""`rlops render FILE`: what a manifest becomes, without a cluster.

An RLExperiment on Kubernetes becomes its RayJob, one on SLURM its batch script,
one placed locally the runtime command; a Sweep becomes the trials of its first
plan (as RLExperiment manifests). `--set KEY=VALUE` applies overrides as `rlops run` does.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from rlops.api import Backend, RLExperiment, Sweep
from rlops.api.manifests import ManifestError
from rlops.api.validation import validate_manifest
from rlops.cli.run import add_set_argument, effective_documents
from rlops.runner.overrides import OverrideError

PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"
TOKEN_NOTE = "<per-experiment token, set by the operator>"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "render", help="Print what a manifest becomes (RayJob, sbatch script, trials)."
    )
    p.add_argument("file", type=Path, help="A YAML file of RLExperiments and Sweeps.")
    p.add_argument("-n", "--namespace", default="default", help="Namespace to render for.")
    add_set_argument(p)
    p.set_defaults(handler=run)


def stored(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The document as the API server would hold it: namespace and uid filled in."""
    meta = dict(doc.get("metadata") or {})
    meta.setdefault("namespace", namespace)
    meta.setdefault("uid", PLACEHOLDER_UID)
    meta.setdefault("generation", 1)
    return {**doc, "metadata": meta}


def render_experiment(experiment: RLExperiment) -> str:
    backend = experiment.spec.placement.backend
    if backend is Backend.KUBERNETES:
        from rlops.api.settings import Settings
        from rlops.backends.kuberay import build_rayjob, progress_secret

        # What the operator creates: the token's Secret (its value shown as a note), the RayJob.
        secret = progress_secret(experiment, Settings(secret="render"))
        secret["stringData"] = {key: TOKEN_NOTE for key in secret.pop("data")}
        rayjob = build_rayjob(experiment, Settings(secret="render"))
        return yaml.safe_dump_all([secret, rayjob], sort_keys=False, width=100)
    if backend is Backend.SLURM:
        try:
            from rlops.backends.slurm import render_for_manifest
        except ImportError:
            return "# the SLURM backend is not available in this installation\n"
        return render_for_manifest(experiment)
    return f"# runs on this machine: {shlex.join(['rlops', 'run', '<file>'])}\n"


def render_sweep(sweep: Sweep) -> str:
    from rlops.operator.sweeps import reconcile_sweep

    actions = reconcile_sweep(sweep, [], datetime.now(UTC))
    header = (
        f"# Sweep {sweep.metadata.name}: the {len(actions.create)} trial(s) of its first plan "
        f"(parallelism {sweep.spec.parallelism})\n"
    )
    return header + yaml.safe_dump_all(actions.create, sort_keys=False, width=100)


def run(args: argparse.Namespace) -> int:
    try:
        documents = effective_documents(args.file, args.overrides)
    except (ManifestError, OverrideError) as exc:
        print(exc, file=sys.stderr)
        return 1
    out = []
    for doc in documents:
        errors = validate_manifest(doc)
        if errors:
            for err in errors:
                print(f"{args.file}: {err}", file=sys.stderr)
            return 1
        body = stored(doc, args.namespace)
        if doc.get("kind") == "Sweep":
            out.append(render_sweep(Sweep.model_validate(body)))
        else:
            out.append(render_experiment(RLExperiment.model_validate(body)))
    sys.stdout.write("---\n".join(out))
    return 0
