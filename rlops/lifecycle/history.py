"""A sweep trial's objective history in `rlops.dev/history`: the points (iteration, value)
that early stopping and PBT plan from, written by whichever driver reads the trial's
progress (the operator from the records its runs post, the SLURM bridge from
progress.jsonl) and read by the Sweep's reconcile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rlops.api.annotations import ANNOTATION_HISTORY as ANNOTATION_HISTORY
from rlops.api.annotations import HISTORY_POINTS as HISTORY_POINTS
from rlops.api.runinfo import ProgressRecord
from rlops.lifecycle.progress import metric_value


def encode_history(points: Iterable[tuple[int, float]]) -> str:
    """`it:value` pairs, comma-separated: compact enough for hundreds of points."""
    return ",".join(f"{it}:{value:.6g}" for it, value in points)


def decode_history(text: str) -> tuple[tuple[int, float], ...]:
    points = []
    for item in text.split(","):
        it, sep, value = item.partition(":")
        if sep:
            try:
                points.append((int(it), float(value)))
            except ValueError:
                continue
    return tuple(points)


def thin_history(points: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    """At most `limit` points: halve the older ones until they fit, keep the newest."""
    while len(points) > limit > 1:
        points = [*points[:-1][::2], points[-1]]
    return points


def merged_history(
    annotations: Mapping[str, str], records: Iterable[ProgressRecord], metric: str, limit: int
) -> str | None:
    """The history annotation's new value with `records`' values of `metric` merged in (at
    most `limit` points); None when it does not change."""
    known = dict(decode_history(annotations.get(ANNOTATION_HISTORY, "")))
    for record in records:
        value = metric_value(record, metric)
        if value is not None:
            known[record.iteration] = value
    text = encode_history(thin_history(sorted(known.items()), limit))
    return None if text == annotations.get(ANNOTATION_HISTORY, "") else text
