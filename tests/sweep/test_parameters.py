"""apply_parameters: dotted paths into the template (aliases, snake names, list indices, new
keys), re-validation into an RLExperimentSpec, and errors that name the path."""

from __future__ import annotations

import pytest

from rlops.api import RLExperimentSpec
from rlops.sweep import ParameterError, apply_parameters
from tests.builders import experiment


def template(**config: dict[str, object]) -> RLExperimentSpec:
    builder = experiment()
    for group, settings in config.items():
        builder.config(group, **settings)
    return RLExperimentSpec.model_validate(builder.obj()["spec"])


def test_sets_config_keyword_and_keeps_the_rest() -> None:
    spec = apply_parameters(template(), {"config.training.lr": 0.001})
    assert spec.config["training"] == {"train_batch_size_per_learner": 500, "lr": 0.001}
    assert spec.environment.id == "CartPole-v1"


def test_creates_missing_groups() -> None:
    spec = apply_parameters(template(), {"config.env_runners.rollout_fragment_length": 50})
    assert spec.config["env_runners"] == {"rollout_fragment_length": 50}


def test_list_element_by_index() -> None:
    base = template(rl_module={"model_config": {"fcnet_hiddens": [64, 64]}})
    spec = apply_parameters(base, {"config.rl_module.model_config.fcnet_hiddens.1": 256})
    assert spec.config["rl_module"]["model_config"]["fcnet_hiddens"] == [64, 256]
    assert base.config["rl_module"]["model_config"]["fcnet_hiddens"] == [64, 64]  # untouched


def test_model_fields_by_alias_or_snake_name() -> None:
    spec = apply_parameters(
        template(), {"resources.envRunners": 2, "stop.episode_return_mean": 150.0, "seed": 7}
    )
    assert spec.resources.env_runners == 2
    assert spec.stop.episode_return_mean == 150.0
    assert spec.seed == 7


def test_whole_values_replace() -> None:
    spec = apply_parameters(template(), {"environment.config": {"size": 5}})
    assert spec.environment.config == {"size": 5}


def test_index_out_of_range_names_path_and_length() -> None:
    base = template(rl_module={"model_config": {"fcnet_hiddens": [64, 64]}})
    with pytest.raises(ParameterError, match=r"fcnet_hiddens\.5.*2 element"):
        apply_parameters(base, {"config.rl_module.model_config.fcnet_hiddens.5": 1})


def test_unknown_field_lists_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"'resourcez' is not a field.*valid: .*resources"):
        apply_parameters(template(), {"resourcez.envRunners": 2})


def test_value_the_model_rejects() -> None:
    with pytest.raises(ParameterError, match=r"resources\.envRunners\b.*resources"):
        apply_parameters(template(), {"resources.envRunners": "many"})


def test_descending_into_a_value_is_an_error() -> None:
    with pytest.raises(ParameterError, match="is a value"):
        apply_parameters(template(), {"stop.timesteps.x": 1})
