"""RLlib callbacks from user code, named in a manifest as `rlops_examples.callbacks:Name`.

`LongEpisodes` logs, for every finished episode, whether the pole stayed up for at least
`LONG` steps: `env_runners/long_episode_rate` in each result, a custom metric a Sweep can
use as its objective (`objective.metric: env_runners/long_episode_rate`).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

LONG = 50


class LongEpisodes(RLlibCallback):  # type: ignore[misc]
    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is not None:
            metrics_logger.log_value(
                "long_episode_rate", float(len(episode) >= LONG), reduce="mean"
            )
