"""The report's PBT figures: each trial's parameter schedule (its values over iterations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlops.runner.layout import TrialRecord


def schedule(trial: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(iteration, parameters from then on) of a results.json trial, from its start."""
    exploits = trial.get("exploits") or []
    first = trial.get("initialParameters") or trial["parameters"]
    return [(0, first), *((e["iteration"], e["parameters"]) for e in exploits)]


def initial_parameters(record: TrialRecord) -> dict[str, Any]:
    """The parameters a trial started with (before any exploit)."""
    return dict(record.initial_parameters or record.parameters)


def plot_schedules(
    trials: list[dict[str, Any]], keys: list[str], out: Path, slug: Any, pyplot: Any
) -> list[Path]:
    """One figure per parameter: each exploited trial's value as a step line over
    iterations, a marker at each exploit; none when no trial exploited."""
    if not any(t.get("exploits") for t in trials):
        return []
    plt = pyplot()
    colors = plt.get_cmap("tab10")
    images = []
    for key in keys:
        fig, ax = plt.subplots(figsize=(8, 4))
        for t in trials:
            steps = [(i, p[key]) for i, p in schedule(t) if key in p]
            if not steps or not all(isinstance(v, int | float) for _, v in steps):
                continue
            end = max(t.get("iterations") or 0, steps[-1][0])
            xs = [i for i, _ in steps] + [end]
            ys = [v for _, v in steps] + [steps[-1][1]]
            color = colors(t["index"] % 10)
            ax.step(xs, ys, where="post", color=color, label=t["name"])
            ax.scatter(xs[1:-1], ys[1:-1], color=color, marker="o", s=18)
        values = [v for line in ax.get_lines() for v in line.get_ydata()]
        if values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_yscale("log")
        ax.set_xlabel("iteration (dots: exploits)")
        ax.set_ylabel(key)
        ax.set_title(f"parameter schedule: {key}")
        ax.grid(alpha=0.3)
        if 0 < len(trials) <= 16:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out / f"schedule_{slug(key)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        images.append(path)
    return images
