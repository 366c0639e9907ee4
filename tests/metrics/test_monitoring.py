"""The alert rules and the dashboard: `promtool check rules` and the rule unit tests
(monitoring/tests.yaml) pass, the chart's copy of the rules has not drifted, and
Helm renders the PrometheusRule and the dashboard ConfigMap from those same files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules.yaml"
DASHBOARD = ROOT / "charts" / "rlops" / "dashboards" / "rlops.json"
HELM_PYTHON = ROOT / ".venv-helm" / "bin" / "python"
HELM_DRIVER = ROOT / "tests" / "packaging" / "helm_driver.py"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool (Debian package prometheus) is not installed: run scripts/setup.sh"
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.prometheus
def test_promtool_accepts_the_rules() -> None:
    check = promtool("check", "rules", str(RULES))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 5 rules found" in check.stdout


@pytest.mark.prometheus
def test_alert_rule_unit_tests_pass() -> None:
    run = promtool("test", "rules", "monitoring/tests.yaml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((ROOT / "monitoring" / "tests.yaml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    assert alerts == tested


def test_the_chart_copy_of_the_rules_has_not_drifted() -> None:
    run = subprocess.run(
        ["bash", "scripts/sync-monitoring.sh", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def test_dashboard_panels_use_only_rlops_metrics_and_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "rlops-overview"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "sweep"}
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "Trials by phase",
        "Trials by backend",
        "Best objective over time",
        "Learning curves: episode return by experiment",
        "SLURM queue wait",
    } <= titles
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert "rlops_" in target["expr"], panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def helm_install(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    from tests.packaging.apiserver import serve

    kubeconfig = tmp_path / "kubeconfig"
    with serve(kubeconfig) as api:
        run = subprocess.run(
            [
                str(HELM_PYTHON),
                str(HELM_DRIVER),
                "install",
                str(ROOT / "charts" / "rlops"),
                "--release=rlops",
                "--namespace=monitoring-test",
                f"--kubeconfig={kubeconfig}",
                f"--values={json.dumps(values)}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        return api.objects()


def test_helm_renders_the_rules_and_the_dashboard_from_the_same_files(tmp_path: Path) -> None:
    if not HELM_PYTHON.exists():
        pytest.fail(".venv-helm is missing: run scripts/setup.sh")
    objects = helm_install(
        tmp_path, {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}
    )
    rules = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    assert rules[0]["spec"] == yaml.safe_load(RULES.read_text())
    maps = [o for o in objects if o["kind"] == "ConfigMap" and "rlops.json" in o.get("data", {})]
    assert len(maps) == 1
    labels = maps[0]["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"
    assert json.loads(maps[0]["data"]["rlops.json"]) == json.loads(DASHBOARD.read_text())


def test_helm_renders_neither_by_default(tmp_path: Path) -> None:
    if not HELM_PYTHON.exists():
        pytest.fail(".venv-helm is missing: run scripts/setup.sh")
    kinds = {o["kind"] for o in helm_install(tmp_path, {})}
    assert "PrometheusRule" not in kinds
    assert "Deployment" in kinds
