"""`report/`: learning curves, objective against each parameter, and an index.html.

Made from the run directory alone (results.json and each trial's progress.jsonl), so
`rlops report` works on any finished or interrupted run, here or copied elsewhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from rlops.api import Sweep, SweepSpec
from rlops.api.manifests import load_one
from rlops.api.runinfo import ProgressRecord, read_progress, read_result
from rlops.runner.layout import SWEEP_MANIFEST, SweepLayout, write_atomic
from rlops.runner.pbt_report import plot_schedules
from rlops.runner.report_rungs import plot_rungs


class ReportError(ValueError):
    """A directory that holds no run."""


@dataclass(frozen=True)
class Curve:
    label: str
    group: int
    timesteps: list[int]
    returns: list[float]


def curve(label: str, group: int, records: Sequence[ProgressRecord]) -> Curve:
    points = [(r.timesteps, r.episode_return_mean) for r in records]
    kept = [(t, v) for t, v in points if v is not None and math.isfinite(v)]
    return Curve(label, group, [t for t, _ in kept], [v for _, v in kept])


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves: Sequence[Curve], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10")
    seen: dict[int, int] = {}
    for c in curves:
        style = ["-", "--", ":", "-."][seen.get(c.group, 0) % 4]
        seen[c.group] = seen.get(c.group, 0) + 1
        ax.plot(c.timesteps, c.returns, style, color=colors(c.group % 10), label=c.label)
    ax.set_xlabel("timesteps")
    ax.set_ylabel("episode return mean")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if 0 < len(curves) <= 16:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_parameter(
    key: str,
    points: Sequence[tuple[Any, float]],
    means: Sequence[tuple[Any, float]],
    metric: str,
    path: Path,
) -> Path:
    """Each seed's objective (dots) and each configuration's mean (diamonds) against `key`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    values = [v for v, _ in points] + [v for v, _ in means]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        positions = {v: v for v in values}
        positive = [v for v in values if v > 0]
        if len(positive) == len(values) and positive and max(positive) / min(positive) > 20:
            ax.set_xscale("log")
    else:
        labels = sorted({json.dumps(v) for v in values})
        positions = {v: labels.index(json.dumps(v)) for v in map(_hashable, values)}
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
    ax.scatter(
        [positions[_hashable(v)] for v, _ in points],
        [o for _, o in points],
        alpha=0.5,
        label="seed",
    )
    ax.scatter(
        [positions[_hashable(v)] for v, _ in means],
        [o for _, o in means],
        marker="D",
        color="black",
        label="mean over seeds",
    )
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _hashable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}
img{max-width:100%;margin:1em 0}</style></head>
<body><h1>{{ title }}</h1>
{% if status %}<p>{{ status }}</p>{% endif %}
{% if rows %}<h2>Leaderboard</h2>
<table><tr>{% for h in header %}<th class="{{ 'l' if loop.index0 < 2 else '' }}">{{ h }}</th>
{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td class="{{ 'l' if loop.index0 < 2 else '' }}">
{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
{% for image in images %}<div><img src="{{ image }}" alt="{{ image }}"></div>
{% endfor %}</body></html>
"""
)


def make_report(directory: Path) -> Path:
    """Write `<directory>/report/` for a sweep or a single experiment; returns index.html."""
    if (directory / SWEEP_MANIFEST).exists():
        return _sweep_report(SweepLayout(directory))
    if (directory / "progress.jsonl").exists() or (directory / "result.json").exists():
        return _experiment_report(directory)
    raise ReportError(
        f"{directory}: no run here (neither {SWEEP_MANIFEST} of a sweep nor progress.jsonl "
        "of an experiment)"
    )


def sweep_spec(layout: SweepLayout) -> SweepSpec:
    """The spec the sweep ran with: its effective manifest in the run directory."""
    return Sweep.model_validate(load_one(layout.manifest, "Sweep")).spec


def _sweep_report(layout: SweepLayout) -> Path:
    if not layout.results.exists():
        raise ReportError(f"{layout.results}: missing; run `rlops run` on the sweep first")
    results = json.loads(layout.results.read_text())
    out = layout.report
    out.mkdir(parents=True, exist_ok=True)
    metric = results["objective"].get("metric", "episode_return_mean")
    trials = results["trials"]
    curves = [curve(t["name"], t["index"], read_progress(layout.trial(t["name"]))) for t in trials]
    images = [plot_curves(curves, out / "learning_curves.png", f"{results['sweep']}: learning")]
    rung_figure = plot_rungs(
        sweep_spec(layout),
        trials,
        {t["name"]: read_progress(layout.trial(t["name"])) for t in trials},
        out / "asha_rungs.png",
    )
    images += [rung_figure] if rung_figure is not None else []
    keys = sorted({k for t in trials for k in t["parameters"]})
    leaderboard = results["leaderboard"]
    for key in keys:
        points = [
            (t["parameters"][key], t["objective"])
            for t in trials
            if key in t["parameters"] and t["objective"] is not None
        ]
        means = [
            (e["parameters"][key], e["objective"]) for e in leaderboard if key in e["parameters"]
        ]
        if points:
            path = out / f"objective_vs_{slug(key)}.png"
            images.append(plot_parameter(key, points, means, metric, path))
    images += plot_schedules(trials, keys, out, slug, _pyplot)
    header = ["rank", "configuration", *keys, f"mean {metric}", "std", "seeds", "best trial"]
    rows = [
        [
            e["rank"],
            e["name"],
            *(e["parameters"].get(k, "") for k in keys),
            f"{e['objective']:.4g}",
            f"{e['std']:.3g}",
            e["seeds"],
            e["best_trial"],
        ]
        for e in leaderboard
    ]
    return _page(out, results["sweep"], results["status"].get("message", ""), header, rows, images)


def _experiment_report(directory: Path) -> Path:
    out = directory / "report"
    out.mkdir(parents=True, exist_ok=True)
    name = directory.name
    images = [
        plot_curves(
            [curve(name, 0, read_progress(directory))],
            out / "learning_curve.png",
            f"{name}: learning",
        )
    ]
    result = read_result(directory)
    status = (
        f"{result.status}: {result.message} (iteration {result.iteration}, "
        f"timesteps {result.timesteps}, return {result.episode_return_mean})"
        if result is not None
        else ""
    )
    return _page(out, name, status, [], [], images)


def _page(
    out: Path,
    title: str,
    status: str,
    header: list[str],
    rows: list[list[Any]],
    images: list[Path],
) -> Path:
    html = PAGE.render(
        title=title, status=status, header=header, rows=rows, images=[p.name for p in images]
    )
    index = out / "index.html"
    write_atomic(index, html)
    return index
