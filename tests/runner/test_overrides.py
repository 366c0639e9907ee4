"""`--set` overrides: parsing (YAML values, comma lists outside brackets), fixing values by
dotted path with list indices, grid parameters on Sweeps, an RLExperiment turned into a
Sweep, and errors that name the key; validation after overrides through `rlops run`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlops.api import validate_manifest
from rlops.cli import main
from rlops.runner.overrides import (
    OverrideError,
    apply_overrides,
    parse_override,
    split_top_level,
)
from tests.builders import experiment, sweep


def test_values_are_yaml() -> None:
    assert parse_override("a.b=0.9").values == (0.9,)
    assert parse_override("a=true").values == (True,)
    assert parse_override("a=[64, 64]").values == ([64, 64],)
    assert parse_override("a=hello").values == ("hello",)
    assert not parse_override("a=[1,2]").sweep


def test_a_comma_list_outside_brackets_is_a_sweep() -> None:
    override = parse_override("template.config.training.gamma=0.9,0.99")
    assert override.sweep
    assert override.values == (0.9, 0.99)
    assert split_top_level("[32,32],[64,64],'a,b'") == ["[32,32]", "[64,64]", "'a,b'"]


@pytest.mark.parametrize("text", ["novalue", "=3", "a..b=1"])
def test_malformed_overrides_are_refused(text: str) -> None:
    with pytest.raises(OverrideError):
        parse_override(text)


def test_a_comma_list_adds_a_grid_parameter_to_a_sweep() -> None:
    base = sweep("s").param("config.training.lr", "grid", values=[0.1]).obj()
    out = apply_overrides(base, ["template.config.training.gamma=0.9,0.99"])
    assert out["spec"]["parameters"]["config.training.gamma"] == {
        "type": "grid",
        "values": [0.9, 0.99],
    }
    assert out["spec"]["parameters"]["config.training.lr"]["values"] == [0.1]
    assert base["spec"]["parameters"].keys() == {"config.training.lr"}  # Input unchanged.
    assert validate_manifest(out) == []


def test_a_fixed_value_wins_over_a_parameter_of_the_same_key() -> None:
    base = sweep("s").param("config.training.lr", "grid", values=[0.1, 0.2]).obj()
    out = apply_overrides(base, ["template.config.training.lr=0.05", "parallelism=3"])
    assert out["spec"]["parameters"] == {}
    assert out["spec"]["template"]["config"]["training"]["lr"] == 0.05
    assert out["spec"]["parallelism"] == 3


def test_list_elements_are_set_by_index() -> None:
    base = experiment("e").config("rl_module", model_config={"fcnet_hiddens": [64, 64]}).obj()
    out = apply_overrides(base, ["config.rl_module.model_config.fcnet_hiddens.1=32"])
    assert out["spec"]["config"]["rl_module"]["model_config"]["fcnet_hiddens"] == [64, 32]
    with pytest.raises(OverrideError, match=r"fcnet_hiddens is a list of 2 element\(s\)"):
        apply_overrides(base, ["config.rl_module.model_config.fcnet_hiddens.5=32"])


def test_sweeping_an_experiment_turns_it_into_a_sweep() -> None:
    base = experiment("exp").obj()
    out = apply_overrides(base, ["spec.config.training.lr=0.001,0.0001", "seed=3", "parallelism=2"])
    assert out["kind"] == "Sweep"
    assert out["metadata"]["name"] == "exp"
    spec = out["spec"]
    assert spec["template"]["algorithm"] == "PPO"
    assert spec["template"]["seed"] == 3
    assert spec["parallelism"] == 2
    assert spec["parameters"] == {"config.training.lr": {"type": "grid", "values": [0.001, 0.0001]}}
    assert validate_manifest(out) == []


def test_only_template_values_can_be_swept() -> None:
    with pytest.raises(OverrideError, match=r"only `template\.<path>` keys"):
        apply_overrides(sweep("s").obj(), ["parallelism=1,2"])


def test_setting_below_a_value_names_the_key() -> None:
    with pytest.raises(OverrideError, match=r"spec\.algorithm is a value"):
        apply_overrides(experiment("e").obj(), ["algorithm.x=1"])


def test_run_validates_after_overrides_with_field_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep("s").param("seed", "grid", values=[1, 2]).obj()))
    code = main(
        [
            "run",
            str(path),
            "--root",
            str(tmp_path),
            "--set",
            "parallelism=0",
            "--set",
            "template.config.training.lrr=0.1,0.2",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "spec.parallelism: 0 is not allowed; must be >= 1" in err
    assert "spec.parameters.config.training.lrr" in err
    assert "lr" in err  # The did-you-mean hint of the validator.
    assert not (tmp_path / "s").exists()
