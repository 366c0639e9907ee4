"""Helm's real Go library (helm-sdkpy) from the command line, for the chart tests.

helm-sdkpy needs Python >= 3.12, so it lives in .venv-helm and the tests (Python 3.11)
run this file with that interpreter. It prints one JSON document on stdout.

    helm_driver.py lint CHART
    helm_driver.py install CHART --release NAME --namespace NS --kubeconfig FILE --values JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import helm_sdkpy

SEVERITIES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


async def lint(chart: str) -> dict[str, Any]:
    config = helm_sdkpy.Configuration(namespace="default")
    result = await helm_sdkpy.Lint(config).run(chart)
    messages = [
        {"severity": SEVERITIES.get(m["Severity"], str(m["Severity"])), "path": m["Path"]}
        for m in result.get("Messages") or []
    ]
    return {"messages": messages, "errors": len(result.get("Errors") or [])}


async def install(args: argparse.Namespace) -> dict[str, Any]:
    config = helm_sdkpy.Configuration(namespace=args.namespace, kubeconfig=args.kubeconfig)
    release = await helm_sdkpy.Install(config).run(
        args.release, args.chart, values=json.loads(args.values), wait=False, timeout=60
    )
    return {"manifest": release.get("manifest", ""), "name": release.get("name")}


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="action", required=True)
    p_lint = sub.add_parser("lint")
    p_lint.add_argument("chart")
    p_install = sub.add_parser("install")
    p_install.add_argument("chart")
    p_install.add_argument("--release", required=True)
    p_install.add_argument("--namespace", required=True)
    p_install.add_argument("--kubeconfig", required=True)
    p_install.add_argument("--values", default="{}")
    args = parser.parse_args()
    try:
        out = asyncio.run(lint(args.chart) if args.action == "lint" else install(args))
    except helm_sdkpy.HelmError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
