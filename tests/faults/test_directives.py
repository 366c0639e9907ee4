"""Hostile directive values: a trailing newline, abbreviations of managed sbatch options,
`--comment`/`--array`/`--export`, bind separators in storage paths. Each is rejected by the
validator (with its field path) and by the batch-script renderer; a hypothesis property checks
that every `#SBATCH` flag of a script rendered from an accepted spec is a full allowlisted name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlops.api import RLExperiment, validate_manifest
from rlops.api.directives import ALLOWED, MANAGED, USER_OPTIONS
from rlops.backends.slurm import ScriptError, SlurmSettings, render_for_manifest
from tests.builders import experiment

SETTINGS = SlurmSettings(run_root=Path("/shared/runs"), python="/opt/rlops/bin/python")
SBATCH = re.compile(r"#SBATCH (\S*)")


def paths(body: dict[str, Any]) -> list[str]:
    return [e.path for e in validate_manifest(body)]


def render(body: dict[str, Any]) -> str:
    return render_for_manifest(RLExperiment.model_validate(body), SETTINGS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("partition", "gpu\n"), ("account", "a\n"), ("qos", "q\n"), ("cluster", "hpc\n"),
     ("timeLimit", "10\n"), ("constraint", "a&b\n")],
)  # fmt: skip
def test_a_value_ending_in_a_newline_is_rejected(field: str, value: str) -> None:
    body = experiment("nl").slurm(**{field: value}).obj()
    assert f"spec.placement.slurm.{field}" in paths(body)


def test_a_container_option_ending_in_a_newline_is_rejected() -> None:
    body = experiment("nl").slurm(containerOptions=["--nv\n"]).obj()
    assert "spec.placement.slurm.containerOptions.0" in paths(body)


def test_unicode_digits_are_no_time_limit() -> None:
    body = experiment("nl").slurm(timeLimit="\u0661\u0660").obj()
    assert "spec.placement.slurm.timeLimit" in paths(body)


PREFIXES = ["--chd=/etc", "--job-nam=x", "--outp=/tmp/o", "--sig=B:USR1@1", "--no-requ",
            "--open=truncate", "--comm=x", "--arr=0-9", "--exp=ALL"]  # fmt: skip
MANAGED_FULL = ["--comment=rlops-uid=other", "--array=0-9999", "--export=ALL,LD_PRELOAD=/x",
                "--time=5", "--chdir=/etc", "--wrap=id"]  # fmt: skip


@pytest.mark.parametrize("directive", PREFIXES + MANAGED_FULL + ["--frobnicate", "--nv\n"])
def test_a_directive_that_is_no_full_allowed_name_is_rejected_by_both(directive: str) -> None:
    body = experiment("evil").slurm(extraDirectives=[directive]).obj()
    assert "spec.placement.slurm.extraDirectives.0" in paths(body)
    with pytest.raises(ScriptError, match=r"extraDirectives\.0"):
        render(body)


def test_a_prefix_names_the_option_sbatch_would_take() -> None:
    body = experiment("evil").slurm(extraDirectives=["--chd=/etc"]).obj()
    (error,) = [e for e in validate_manifest(body) if e.path.endswith("extraDirectives.0")]
    assert "--chdir" in error.message and "abbreviation" in error.message


def test_full_user_options_are_accepted() -> None:
    body = experiment("ok").slurm(extraDirectives=["--exclusive", "--mail-type=END"]).obj()
    assert validate_manifest(body) == []
    assert "#SBATCH --mail-type=END" in render(body)


@pytest.mark.parametrize("storage", ["/:/host,", "/data,/etc", "/a:b"])
def test_a_storage_path_cannot_split_a_bind(storage: str) -> None:
    body = (
        experiment("bind")
        .set("spec.storage", {"path": storage})
        .slurm(containerRuntime="apptainer")
        .obj()
    )
    assert "spec.storage.path" in paths(body)
    with pytest.raises(ScriptError, match="--bind"):
        render(body)


def test_object_store_uris_keep_their_colon() -> None:
    body = experiment("s3").set("spec.storage", {"path": "s3://bucket/runs"}).obj()
    assert "spec.storage.path" not in paths(body)


# --- the property ------------------------------------------------------------------------

NAMES = [*sorted(ALLOWED), "nv", "chd", "job-nam", "no-requ", "sig", "open", "x", "comm"]
_name = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(sorted(ALLOWED)).flatmap(lambda n: st.integers(1, len(n)).map(lambda k: n[:k])),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
)
_value = st.one_of(
    st.none(),
    st.text(alphabet="abc09=:,/-_.@+%\n \t$;'\"", min_size=0, max_size=8),
)
_directive = st.builds(
    lambda prefix, name, value: f"{prefix}{name}" + ("" if value is None else f"={value}"),
    st.sampled_from(["--", "--", "-", "--\n", " --"]),
    _name,
    _value,
) | st.sampled_from(["--exclusive", "--mail-type=END", "--gres=gpu:1"])
_plain = st.one_of(
    st.none(),
    st.text(alphabet="abcxyz019_.-\n :&|", min_size=1, max_size=8),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    directives=st.lists(_directive, max_size=4),
    partition=_plain,
    account=_plain,
    constraint=_plain,
    time_limit=st.one_of(st.none(), st.sampled_from(["10", "10\n", "1-00:00:00", "5:00 "])),
)
def test_every_rendered_flag_of_an_accepted_spec_is_an_allowlisted_full_name(
    directives: list[str],
    partition: str | None,
    account: str | None,
    constraint: str | None,
    time_limit: str | None,
) -> None:
    fields = {"partition": partition, "account": account, "constraint": constraint,
              "timeLimit": time_limit}  # fmt: skip
    slurm = {k: v for k, v in fields.items() if v is not None}
    body = experiment("prop").slurm(extraDirectives=directives, **slurm).obj()
    if validate_manifest(body):
        return
    script = render(body)
    lines = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert len(lines) == script.count("#SBATCH")
    for line in lines:
        m = SBATCH.fullmatch(line)
        assert m is not None, line
        flag = m.group(1)
        assert flag.startswith("--"), line
        assert flag[2:].split("=", 1)[0] in ALLOWED, line
    extra = [line.split(" ", 1)[1] for line in lines[-len(directives) :]] if directives else []
    assert all(d[2:].split("=", 1)[0] in USER_OPTIONS for d in extra)
    assert not set(MANAGED) & USER_OPTIONS
