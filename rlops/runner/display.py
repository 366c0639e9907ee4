"""What `rlops run` shows: a live rich table, or plain lines with `--quiet`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from rlops.api import Phase, TrialSummary

PHASE_STYLE = {
    Phase.PENDING: "dim",
    Phase.SUBMITTED: "cyan",
    Phase.RUNNING: "blue",
    Phase.SUCCEEDED: "green",
    Phase.FAILED: "red",
    Phase.STOPPED: "yellow",
    Phase.PAUSED: "magenta",
}


@dataclass(frozen=True)
class Row:
    """One trial as shown."""

    name: str
    parameters: str
    phase: Phase
    attempts: int
    episode_return: float | None
    timesteps: int
    iteration: int
    backend: str


@dataclass(frozen=True)
class View:
    """Everything on screen at one moment."""

    title: str
    rows: Sequence[Row]
    status: str
    percent: float | None = None  # A single experiment: percent of its stop budget.


def format_parameters(parameters: dict[str, Any]) -> str:
    """`lr=0.001 fcnet_hiddens.0=64`: each key by its last meaningful part."""
    return " ".join(f"{short_key(k)}={_value(v)}" for k, v in parameters.items())


def short_key(key: str) -> str:
    parts = key.split(".")
    tail = parts[-1]
    if tail.isdigit() and len(parts) > 1:
        return f"{parts[-2]}.{tail}"
    return tail


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


class Display(Protocol):
    def update(self, view: View) -> None: ...

    def message(self, text: str) -> None: ...

    def leaderboard(self, title: str, rows: Sequence[TrialSummary], metric: str) -> None: ...

    def close(self) -> None: ...


def trial_table(view: View) -> Table:
    table = Table(title=view.title, caption=view.status, expand=False)
    table.add_column("trial", no_wrap=True)
    table.add_column("parameters")
    table.add_column("phase", no_wrap=True, min_width=9)
    for column in ("attempts", "iter", "timesteps", "return"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("backend", no_wrap=True)
    for row in view.rows:
        table.add_row(
            row.name,
            row.parameters,
            Text(row.phase.value, style=PHASE_STYLE[row.phase]),
            str(row.attempts),
            str(row.iteration),
            str(row.timesteps),
            _number(row.episode_return),
            row.backend,
        )
    return table


def leaderboard_table(title: str, rows: Sequence[TrialSummary], metric: str) -> Table:
    table = Table(title=title)
    table.add_column("rank", justify="right")
    table.add_column("configuration (first seed)")
    table.add_column("parameters")
    table.add_column(f"mean {metric}", justify="right")
    for rank, row in enumerate(rows, 1):
        table.add_row(
            str(rank), row.name, format_parameters(row.parameters), _number(row.objective)
        )
    return table


class LiveDisplay:
    """A table redrawn in place; refreshed by the runner's loop (no thread of its own)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.live.start()

    def _render(self, view: View) -> RenderableType:
        table = trial_table(view)
        if view.percent is None:
            return table
        bar = ProgressBar(total=100.0, completed=view.percent, width=40)
        return Group(table, Group(bar, Text(f"{view.percent:.0f}% of the stop budget")))

    def update(self, view: View) -> None:
        self.live.update(self._render(view), refresh=True)

    def message(self, text: str) -> None:
        self.live.console.print(text, markup=False, highlight=False)

    def leaderboard(self, title: str, rows: Sequence[TrialSummary], metric: str) -> None:
        self.console.print(leaderboard_table(title, rows, metric))

    def close(self) -> None:
        self.live.stop()


class PlainDisplay:
    """One line per change of phase, and a progress line per running trial now and then."""

    def __init__(self, interval_seconds: float = 30.0, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True, no_color=True)
        self.interval = interval_seconds
        self.phases: dict[str, Phase] = {}
        self.last_progress = 0.0
        self.last_status = ""

    def _say(self, text: str) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {text}", markup=False)

    def update(self, view: View) -> None:
        for row in view.rows:
            if self.phases.get(row.name) != row.phase:
                self.phases[row.name] = row.phase
                detail = f" {row.parameters}" if row.parameters else ""
                ret = f" return {_number(row.episode_return)}" if row.episode_return else ""
                self._say(f"{row.name} {row.phase.value} (attempt {row.attempts}){detail}{ret}")
        now = time.monotonic()
        if now - self.last_progress >= self.interval:
            self.last_progress = now
            for row in view.rows:
                if row.phase == Phase.RUNNING:
                    self._say(
                        f"{row.name} iteration {row.iteration} timesteps {row.timesteps} "
                        f"return {_number(row.episode_return) or '-'}"
                        + (f" ({view.percent:.0f}%)" if view.percent is not None else "")
                    )
        if view.status != self.last_status:
            self.last_status = view.status
            self._say(view.status)

    def message(self, text: str) -> None:
        self._say(text)

    def leaderboard(self, title: str, rows: Sequence[TrialSummary], metric: str) -> None:
        self._say(title)
        for rank, row in enumerate(rows, 1):
            self.console.print(
                f"  {rank}. {row.name} {format_parameters(row.parameters)} "
                f"mean {metric} {_number(row.objective)}",
                markup=False,
            )

    def close(self) -> None:
        pass
