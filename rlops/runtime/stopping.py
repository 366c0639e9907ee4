"""Stop criteria: the first one met ends the run."""

from __future__ import annotations

from dataclasses import dataclass

from rlops.api.experiment import StopSpec


@dataclass(frozen=True)
class Totals:
    """The run's counters over all attempts."""

    iteration: int = 0
    timesteps: int = 0
    time_seconds: float = 0.0
    episode_return_mean: float | None = None
    best_episode_return_mean: float | None = None


def stop_reason(stop: StopSpec, totals: Totals) -> str | None:
    """The name of the criterion met (StopSpec's field name), or None.

    When several are met by the same iteration, the return criterion wins (the run
    reached its goal), then timesteps, iterations and wall time.
    """
    ret = totals.episode_return_mean
    if stop.episode_return_mean is not None and ret is not None and ret >= stop.episode_return_mean:
        return "episode_return_mean"
    if stop.timesteps is not None and totals.timesteps >= stop.timesteps:
        return "timesteps"
    if stop.iterations is not None and totals.iteration >= stop.iterations:
        return "iterations"
    if stop.wall_time_seconds is not None and totals.time_seconds >= stop.wall_time_seconds:
        return "wall_time_seconds"
    return None
