"""The results of a local sweep: leaderboard.csv, results.json and the `best` link."""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlops.api import Phase, SweepSpec, SweepStatus
from rlops.runner.layout import SweepLayout, write_atomic
from rlops.sweep import TrialState, leaderboard

SCORED = (Phase.SUCCEEDED, Phase.STOPPED)


@dataclass(frozen=True)
class Entry:
    """One configuration, ranked by its mean objective over seeds."""

    rank: int
    name: str  # The configuration's first seed.
    index: int
    parameters: dict[str, Any]
    objective: float
    std: float
    seeds: int
    objectives: list[float]
    best_trial: str  # The seed with the best objective.
    exploits: list[dict[str, Any]] = field(default_factory=list)  # pbt: its exploits


def ranking(spec: SweepSpec, trials: Sequence[TrialState]) -> list[Entry]:
    """The engine's leaderboard, with each configuration's seeds spelt out."""
    sign = 1.0 if spec.objective.mode == "max" else -1.0
    by_name = {t.name: t for t in trials}
    entries = []
    for rank, summary in enumerate(leaderboard(spec, trials), 1):
        index = by_name[summary.name].index
        seeds = sorted(
            (
                t
                for t in trials
                if t.index == index and t.phase in SCORED and t.objective is not None
            ),
            key=lambda t: t.seed_index,
        )
        values = [t.objective for t in seeds if t.objective is not None]
        best = max(seeds, key=lambda t: sign * (t.objective or 0.0))
        entries.append(
            Entry(
                rank=rank,
                name=summary.name,
                index=index,
                parameters=dict(summary.parameters),
                objective=summary.objective if summary.objective is not None else float("nan"),
                std=statistics.pstdev(values) if len(values) > 1 else 0.0,
                seeds=len(values),
                objectives=values,
                best_trial=best.name,
                exploits=[e.dump() for e in summary.exploits],
            )
        )
    return entries


def leaderboard_csv(entries: Sequence[Entry], parameter_keys: Sequence[str], metric: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "rank", "configuration", *parameter_keys, f"mean_{metric}", "std", "seeds",
            "best_trial", "exploits",
        ]
    )  # fmt: skip
    for e in entries:
        writer.writerow(
            [
                e.rank,
                e.name,
                *(e.parameters.get(k, "") for k in parameter_keys),
                f"{e.objective:.6g}",
                f"{e.std:.6g}",
                e.seeds,
                e.best_trial,
                exploit_trail(e.exploits),
            ]
        )
    return out.getvalue()


def exploit_trail(exploits: Sequence[dict[str, Any]]) -> str:
    """pbt: `iteration:source` of each exploit, oldest first ("" without any)."""
    return " ".join(f"{e['iteration']}:{e['source']}" for e in exploits)


def trial_rows(trials: Sequence[TrialState], extra: dict[str, dict[str, Any]]) -> list[Any]:
    return [
        {
            "name": t.name,
            "index": t.index,
            "seedIndex": t.seed_index,
            "parameters": dict(t.parameters),
            "phase": t.phase.value,
            "attempts": t.attempts,
            "promotions": t.promotions,
            "exploits": [e.dump() for e in t.exploits],
            "objective": t.objective,
            **extra.get(t.name, {}),
        }
        for t in sorted(trials, key=lambda t: (t.index, t.seed_index))
    ]


def write_results(
    layout: SweepLayout,
    name: str,
    spec: SweepSpec,
    status: SweepStatus,
    trials: Sequence[TrialState],
    extra: dict[str, dict[str, Any]],
) -> list[Entry]:
    """leaderboard.csv, results.json and `best` -> the best configuration's best seed."""
    entries = ranking(spec, trials)
    keys = list(spec.parameters)
    write_atomic(layout.leaderboard, leaderboard_csv(entries, keys, spec.objective.metric))
    results = {
        "sweep": name,
        "objective": spec.objective.dump(),
        "status": status.dump(),
        "leaderboard": [asdict(e) for e in entries],
        "trials": trial_rows(trials, extra),
        "best": entries[0].best_trial if entries else None,
    }
    write_atomic(layout.results, json.dumps(results, indent=1, default=str) + "\n")
    if entries:
        link_best(layout, entries[0].best_trial)
    return entries


def link_best(layout: SweepLayout, trial: str) -> None:
    """`best` -> trials/<trial>: a relative symlink, or best.txt where links are not allowed."""
    target = Path("trials") / trial
    tmp = layout.root / ".best.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(target, tmp, target_is_directory=True)
        os.replace(tmp, layout.best)
    except OSError:
        write_atomic(layout.root / "best.txt", f"{target}\n")
