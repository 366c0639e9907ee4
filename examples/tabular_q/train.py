"""Tabular Q-learning on a slippery grid: a training program of its own, run by rlops.

Standard library only, and no rlops import: it follows the command-trainer contract
(docs/command-trainers.md) through environment variables alone.

    RLOPS_CONFIG             JSON: alpha, gamma, epsilon, size, slip, episodes_per_iteration
    RLOPS_SEED               the run's seed
    RLOPS_PROGRESS           one JSON line per iteration is appended here
    RLOPS_CHECKPOINT_DIR     checkpoints are written here (a dot-name first, then renamed);
                             the progress line of that iteration names it
    RLOPS_RESUME_CHECKPOINT  set on resume: the checkpoint to continue from
    RLOPS_RESUME_ITERATION   set on resume: this run's iteration and timesteps there (after
    RLOPS_RESUME_TIMESTEPS   a PBT exploit the checkpoint is another run's)

SIGTERM or SIGUSR1 ends the iteration under way; the program then checkpoints and exits
75 ("checkpointed, requeue me"). Run by hand, it writes into ./tabular-q-run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path

REQUEUE = 75
ACTIONS = ((0, 1), (1, 0), (0, -1), (-1, 0))  # right, down, left, up
DEFAULTS = {
    "alpha": 0.5,
    "gamma": 0.95,
    "epsilon": 0.1,
    "size": 8,
    "slip": 0.1,
    "step_cost": 0.02,
    "episodes_per_iteration": 50,
    "max_steps": 200,
    "max_iterations": 0,  # 0: until rlops asks it to end (a stop criterion, a signal)
}


class Grid:
    """Start top-left, goal bottom-right (+1); each step costs `step_cost`; a move slips
    to a random direction with probability `slip`."""

    def __init__(self, size: int, slip: float, step_cost: float, max_steps: int) -> None:
        self.size, self.slip, self.step_cost, self.max_steps = size, slip, step_cost, max_steps

    def episode(self, q: list[list[float]], cfg: dict, rng: random.Random) -> tuple[float, int]:
        """One episode of epsilon-greedy Q-learning; (return, steps)."""
        state, total = 0, 0.0
        goal = self.size * self.size - 1
        for step in range(1, self.max_steps + 1):
            if rng.random() < cfg["epsilon"]:
                action = rng.randrange(4)
            else:
                best = max(q[state])
                action = rng.choice([a for a in range(4) if q[state][a] == best])
            move = ACTIONS[rng.randrange(4) if rng.random() < self.slip else action]
            row = min(max(state // self.size + move[0], 0), self.size - 1)
            col = min(max(state % self.size + move[1], 0), self.size - 1)
            nxt = row * self.size + col
            reward = 1.0 if nxt == goal else -self.step_cost
            target = reward if nxt == goal else reward + cfg["gamma"] * max(q[nxt])
            q[state][action] += cfg["alpha"] * (target - q[state][action])
            total += reward
            state = nxt
            if state == goal:
                return total, step
        return total, self.max_steps


def save(directory: Path, state: dict) -> str:
    """Write atomically (rlops adopts only complete checkpoints: no leading dot); the name."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"q-{state['iteration']:06d}.json"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, directory / name)
    return name


def main() -> int:
    run_dir = Path(os.environ.get("RLOPS_RUN_DIR", "tabular-q-run"))
    config_path = os.environ.get("RLOPS_CONFIG")
    cfg = {**DEFAULTS, **(json.loads(Path(config_path).read_text()) if config_path else {})}
    progress = Path(os.environ.get("RLOPS_PROGRESS", run_dir / "progress.jsonl"))
    checkpoints = Path(os.environ.get("RLOPS_CHECKPOINT_DIR", run_dir / "checkpoints"))
    resume = os.environ.get("RLOPS_RESUME_CHECKPOINT")
    seed = int(os.environ.get("RLOPS_SEED") or 0)
    progress.parent.mkdir(parents=True, exist_ok=True)

    grid = Grid(int(cfg["size"]), cfg["slip"], cfg["step_cost"], int(cfg["max_steps"]))
    if resume:
        state = json.loads(Path(resume).read_text())
        rng = random.Random()
        rng.setstate((state["rng"][0], tuple(state["rng"][1]), state["rng"][2]))
        # This run's own counters (after a PBT exploit the checkpoint is another run's).
        for key in ("iteration", "timesteps"):
            state[key] = int(os.environ.get(f"RLOPS_RESUME_{key.upper()}", state[key]))
        print(f"resumed from {resume} at iteration {state['iteration']}", flush=True)
    else:
        n = grid.size * grid.size
        state = {"q": [[0.0] * 4 for _ in range(n)], "iteration": 0, "timesteps": 0}
        rng = random.Random(seed)

    asked: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, lambda signum, frame: asked.append(signum))

    limit = int(cfg["max_iterations"])
    with progress.open("a") as out:
        while not asked:
            if limit and state["iteration"] >= limit:
                save(checkpoints, {**state, "rng": rng.getstate()})
                return 0
            returns, steps = [], 0
            for _ in range(int(cfg["episodes_per_iteration"])):
                ret, n = grid.episode(state["q"], cfg, rng)
                returns.append(ret)
                steps += n
            state["iteration"] += 1
            state["timesteps"] += steps
            line = {
                "iteration": state["iteration"],
                "timesteps": state["timesteps"],
                "episode_return_mean": sum(returns) / len(returns),
                "success_rate": sum(r > 0 for r in returns) / len(returns),
            }
            frequency = int(os.environ.get("RLOPS_CHECKPOINT_FREQUENCY") or 0)
            if frequency and state["iteration"] % frequency == 0:
                # Written before its line, which names it: rlops files it at this iteration.
                line["checkpoint"] = save(checkpoints, {**state, "rng": rng.getstate()})
            out.write(json.dumps(line) + "\n")
            out.flush()
    save(checkpoints, {**state, "rng": rng.getstate()})
    print(f"signal {asked[0]}: checkpointed at iteration {state['iteration']}", flush=True)
    return REQUEUE


if __name__ == "__main__":
    sys.exit(main())
