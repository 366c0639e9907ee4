"""What a finished local sweep leaves behind: run-directory naming (sweep.yaml, trials/
<sweep>-<index>-s<seed>/), leaderboard.csv and results.json ranked by mean objective over
seeds, the `best` link, and report/ (PNGs and index.html) made at the end of a run and by
`rlops report`. Trials are the fast stand-in trainer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from rlops.cli import main
from rlops.runner.report import ReportError, make_report
from tests.builders import experiment, sweep
from tests.runner.helpers import run_manifest

PNG = b"\x89PNG\r\n\x1a\n"


def two_by_two() -> dict:
    return (
        sweep("ranked")
        .template("stop", {"iterations": 5})
        .template("environment.config", {"seconds_per_iteration": 0.01})
        .param("config.training.lr", "grid", values=[0.001, 0.004])
        .param("config.training.gamma", "grid", values=[0.9, 0.99])
        .set("spec.seedsPerTrial", 2)
        .set("spec.parallelism", 4)
        .obj()
    )


def test_run_directory_naming_and_results(tmp_path: Path) -> None:
    manifest = two_by_two()
    outcome = run_manifest(manifest, tmp_path, cpus=4, report=True)
    assert outcome.code == 0, outcome.output
    layout = outcome.layout
    assert yaml.safe_load(layout.manifest.read_text()) == manifest
    assert layout.trial_names() == [f"ranked-{i}-s{s}" for i in range(4) for s in range(2)]
    for name in layout.trial_names():
        spec = yaml.safe_load((layout.trial(name) / "spec.yaml").read_text())
        assert spec["kind"] == "RLExperiment" and spec["metadata"]["name"] == name
        assert spec["spec"]["placement"]["backend"] == "local"
        assert (layout.trial(name) / "attempts" / "1.log").exists()

    results = outcome.results()
    trials = {t["name"]: t for t in results["trials"]}
    means = {}
    for name, trial in trials.items():
        objective = json.loads((layout.trial(name) / "result.json").read_text())
        assert trial["objective"] == objective["episode_return_mean"]
        means.setdefault(trial["index"], []).append(trial["objective"])
    expected = sorted(means, key=lambda i: -sum(means[i]) / len(means[i]))

    rows = list(csv.DictReader(layout.leaderboard.open()))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    assert [trials[r["configuration"]]["index"] for r in rows] == expected
    for row in rows:
        index = trials[row["configuration"]]["index"]
        assert float(row["mean_episode_return_mean"]) == pytest.approx(
            sum(means[index]) / 2, rel=1e-5
        )
        assert row["seeds"] == "2"
    best = results["leaderboard"][0]["best_trial"]
    assert results["best"] == best
    assert layout.best.resolve() == layout.trial(best).resolve()


def test_report_files_are_made(tmp_path: Path) -> None:
    outcome = run_manifest(two_by_two(), tmp_path, cpus=4, report=True)
    report = outcome.layout.report
    names = sorted(p.name for p in report.iterdir())
    assert names == [
        "index.html",
        "learning_curves.png",
        "objective_vs_config.training.gamma.png",
        "objective_vs_config.training.lr.png",
    ]
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == PNG
        assert png.stat().st_size > 5000
    html = (report / "index.html").read_text()
    assert html.count("<img") == 3
    for entry in outcome.results()["leaderboard"]:
        assert f"\n{entry['name']}</td>" in html


def test_rlops_report_by_name_remakes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_manifest(two_by_two(), tmp_path, cpus=4)
    assert not outcome.layout.report.exists()
    assert main(["report", "ranked", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().endswith("report/index.html")
    assert (outcome.layout.report / "learning_curves.png").exists()


def test_a_single_experiment_gets_a_learning_curve(tmp_path: Path) -> None:
    manifest = experiment("solo").stop(iterations=3).obj()
    outcome = run_manifest(manifest, tmp_path, report=True)
    assert outcome.code == 0
    assert (outcome.root / "report" / "learning_curve.png").read_bytes()[:8] == PNG
    results = json.loads((outcome.root / "results.json").read_text())
    assert results["phase"] == "Succeeded"
    assert results["result"]["iteration"] == 3


def test_a_directory_without_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no run here"):
        make_report(tmp_path)
