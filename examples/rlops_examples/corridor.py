"""A one-dimensional corridor: walk right to the exit.

The agent starts at cell 0 of a corridor `length` cells long and moves left or
right; reaching the last cell ends the episode with +1. Every step costs
`step_cost`, and an episode is cut off after `max_steps` (default 4 x length). The
best return is `1 - step_cost * (length - 1)`; a random walk rarely gets there in
time, so learning shows clearly within a few thousand steps.

Use it from a manifest as `environment.entryPoint: rlops_examples.corridor:make_env`
with `environment.config: {length: 8}`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class Corridor(gym.Env[np.ndarray, int]):
    """Observation: the position as a fraction of the corridor. Actions: 0 left, 1 right."""

    def __init__(self, length: int = 8, step_cost: float = 0.05, max_steps: int | None = None):
        if length < 2:
            raise ValueError(f"env_config.length: {length}; must be >= 2")
        self.length = length
        self.step_cost = step_cost
        self.max_steps = max_steps or 4 * length
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0
        self.steps = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.position / (self.length - 1)], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.position = 0
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.steps += 1
        move = 1 if action == 1 else -1
        self.position = min(max(self.position + move, 0), self.length - 1)
        arrived = self.position == self.length - 1
        reward = 1.0 if arrived else -self.step_cost
        truncated = not arrived and self.steps >= self.max_steps
        return self._obs(), reward, arrived, truncated, {}


def make_env(env_config: dict[str, Any]) -> Corridor:
    """The env creator rlops registers with RLlib: it receives `environment.config`."""
    return Corridor(**dict(env_config))
