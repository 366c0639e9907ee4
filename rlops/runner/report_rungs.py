"""The report's ASHA figure: every trial's objective against iterations, with the rungs.

Each rung (gracePeriod * reductionFactor^k below the budget, as the engine computes them)
is a vertical line labelled with how many trials reached it and how many went past it.
A trial's line ends with a marker of its final phase, so the figure shows where ASHA cut
each trial short and which trials it let (or, in the promotion variant, promoted) on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlops.api import SweepSpec
from rlops.api.runinfo import ProgressRecord
from rlops.api.sweep import EarlyStoppingType
from rlops.runner.state import history
from rlops.sweep.early_stopping import rungs

MARKERS = {"Succeeded": ("o", "tab:green"), "Stopped": ("x", "tab:red")}


def plot_rungs(
    spec: SweepSpec,
    trials: Sequence[Mapping[str, Any]],
    progress: Mapping[str, Sequence[ProgressRecord]],
    path: Path,
) -> Path | None:
    """The rung figure of an ASHA sweep (None for any other sweep, or one with no progress)."""
    rule = spec.early_stopping
    if rule is None or rule.type != EarlyStoppingType.ASHA:
        return None
    metric = spec.objective.metric
    lines = {t["name"]: history(progress.get(t["name"], ()), metric) for t in trials}
    reached = max((points[-1][0] for points in lines.values() if points), default=0)
    if reached == 0:
        return None
    milestones = rungs(rule, rule.max_iterations or spec.template.stop.iterations, reached)
    from rlops.runner.report import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for t in trials:
        points = lines[t["name"]]
        if not points:
            continue
        marker, color = MARKERS.get(t["phase"], ("s", "tab:gray"))
        ax.plot([i for i, _ in points], [v for _, v in points], "-", color=color, alpha=0.4)
        ax.plot(*points[-1], marker, color=color, markersize=7)
    top = ax.get_ylim()[1]
    for k, rung in enumerate(milestones):
        at = sum(1 for points in lines.values() if points and points[-1][0] >= rung)
        past = sum(1 for points in lines.values() if points and points[-1][0] > rung)
        ax.axvline(rung, color="black", linestyle="--", linewidth=0.8)
        ax.text(rung, top, f" rung {k}: {at} reached, {past} went on", rotation=90,
                va="top", ha="right", fontsize=7)  # fmt: skip
    for phase, (marker, color) in {**MARKERS, "other": ("s", "tab:gray")}.items():
        ax.plot([], [], marker, color=color, label=phase)
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    where = ", ".join(f"{r:g}" for r in milestones)
    ax.set_title(f"ASHA ({rule.variant.value}): rungs at iterations {where}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
