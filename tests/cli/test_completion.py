"""Shell completion: `rlops completion bash|zsh|fish` loaded into the real shells, which
then complete subcommands and option choices of `rlops` and `kubectl-rlops` by running
the command (argcomplete). zsh's `_describe` is replaced by a printer, since there is no
terminal to draw the menu on; bash's COMPREPLY and fish's `complete -C` are the real ones."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.shims import write_shims

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """`rlops` and `kubectl-rlops` on PATH, as the package's entry points install them."""
    return write_shims(tmp_path)


def shell(name: str, script: str, bin_dir: Path) -> list[str]:
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [name, "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


BASH = """
source <(rlops completion bash)
complete_line() {{
    COMP_LINE="$1"; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=($1); COMP_CWORD=$2
    _python_argcomplete {program} "$3" "$4"
    printf '%s\\n' "${{COMPREPLY[@]}}" | sed 's/ *$//'
}}
complete_line "{program} status -o " 3 "" -o
echo ---
complete_line "{program} pa" 1 pa {program}
"""


@pytest.mark.parametrize("program", ["rlops", "kubectl-rlops"])
def test_bash_completes_subcommands_and_choices(program: str, bin_dir: Path) -> None:
    lines = shell("bash", BASH.format(program=program), bin_dir)
    split = lines.index("---")
    assert sorted(lines[:split]) == ["json", "table", "wide", "yaml"]
    assert [x for x in lines[split + 1 :] if x] == ["pause"]


def test_bash_completes_run_options(bin_dir: Path) -> None:
    script = (
        "source <(rlops completion bash)\n"
        'COMP_LINE="rlops run --back"; COMP_POINT=${#COMP_LINE}\n'
        "_python_argcomplete rlops --back run\n"
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    assert [x.strip() for x in shell("bash", script, bin_dir) if x] == ["--backend"]


def test_zsh_completes_choices(bin_dir: Path) -> None:
    script = (
        "autoload -U compinit; compinit -u; source <(rlops completion zsh)\n"
        "_describe() { print -l -- ${(P)2}; }\n"
        'words=(rlops status -o ""); BUFFER="rlops status -o "; CURSOR=${#BUFFER}\n'
        "_python_argcomplete"
    )
    values = sorted(x.split(":")[0] for x in shell("zsh", script, bin_dir) if x)
    assert values == ["json", "table", "wide", "yaml"]


def test_fish_completes_subcommands_and_choices(bin_dir: Path) -> None:
    script = (
        "rlops completion fish | source\n"
        'complete -C "rlops status -o "; echo ---; complete -C "kubectl-rlops ret"'
    )
    lines = shell("fish", script, bin_dir)
    split = lines.index("---")
    assert sorted(x.split("\t")[0] for x in lines[:split]) == ["json", "table", "wide", "yaml"]
    assert [x.split("\t")[0] for x in lines[split + 1 :] if x] == ["retry"]
