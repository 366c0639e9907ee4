"""Several trials of a Sweep in one SLURM job: the bridge's side of
`placement.slurm.trialsPerJob`.

A first attempt of a sweep's child whose placement asks for `trialsPerJob: K > 1` is not
submitted at once: the poll collects them, groups them by namespace, sweep and batch
directives (`array_key`, as the runner does), and submits each group K at a time as one pack
job (`SlurmBackend.submit_pack`, the one pack script). Every trial of a pack gets its own
status with the pack's job id, its own run directory, and its own end: the job is seen as
the trial's process (`observe_job` through `pack.trial_view`), a stop, pause or deletion
ends that trial alone and cancels the job once every trial of a job still queued was
stopped (`SlurmBackend.stop_packed`). A retry, a resume and a lone remainder are jobs of
their own, as on the runner.

Grouping is by name within a group, so a bridge killed between sbatch and the status writes
forms the same pack again next poll and adopts its job (its name derives from the trials'
run directories and attempts), as long as no new trial of the group appeared meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rlops.api.experiment import BackendRef, RLExperiment, RLExperimentStatus
from rlops.backends.slurm import (
    ArrayTask,
    ScriptError,
    SubmitError,
    array_key,
    pack_slots,
)
from rlops.backends.slurm.script import slurm_placement
from rlops.slurm_bridge.runs import BridgeRuns, PollReport
from rlops.sweep.trials import LABEL_SWEEP


@dataclass
class Deferred:
    """A first attempt waiting for its packmates until the end of the poll's claims."""

    body: dict[str, Any]
    experiment: RLExperiment
    status: RLExperimentStatus


def packable(experiment: RLExperiment, attempt: int, previous: object, resumed: bool) -> bool:
    """Whether a submission may share a job: a sweep's trial asking for `trialsPerJob > 1`,
    on its first attempt (retries and resumes run alone)."""
    return (
        slurm_placement(experiment).trials_per_job > 1
        and LABEL_SWEEP in experiment.metadata.labels
        and attempt == 1
        and previous is None
        and not resumed
    )


class PackingRuns(BridgeRuns):
    """`BridgeRuns` whose packable submissions wait for `submit_packs` (once per poll)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Deferred] = []

    def _submit(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        status: RLExperimentStatus,
        attempt: int,
        report: PollReport,
        previous: BackendRef | None,
        resumed: bool,
    ) -> BackendRef | None:
        if packable(experiment, attempt, previous, resumed):
            self._deferred.append(Deferred(body, experiment, status))
            return None
        return super()._submit(body, experiment, status, attempt, report, previous, resumed)

    def submit_packs(
        self, report: PollReport
    ) -> list[tuple[dict[str, Any], RLExperiment, BackendRef]]:
        """Submit what waited: K to a job per group, a lone remainder as a job of its own.
        Returns each submitted trial with its job, for the poll to observe."""
        deferred, self._deferred = self._deferred, []
        groups: dict[object, list[Deferred]] = defaultdict(list)
        for item in deferred:
            meta = item.experiment.metadata
            key: object
            try:
                key = array_key(self._task(item), self.backend.settings)
            except ScriptError:
                key = id(item)  # alone: its own submission names the field
            groups[(meta.namespace, meta.labels[LABEL_SWEEP], key)].append(item)
        submitted: list[tuple[dict[str, Any], RLExperiment, BackendRef]] = []
        for members in groups.values():
            members.sort(key=lambda d: d.experiment.metadata.name or "")
            per_job = slurm_placement(members[0].experiment).trials_per_job
            for start in range(0, len(members), per_job):
                chunk = members[start : start + per_job]
                if len(chunk) == 1:
                    (item,) = chunk
                    ref = super()._submit(item.body, item.experiment, item.status, 1, report,
                                          None, False)  # fmt: skip
                    if ref is not None:
                        submitted.append((item.body, item.experiment, ref))
                    continue
                submitted += self._submit_pack(chunk, report)
        return submitted

    def _task(self, item: Deferred) -> ArrayTask:
        return ArrayTask(item.experiment, self.run_dir(item.experiment), attempt=1)

    def _submit_pack(
        self, chunk: list[Deferred], report: PollReport
    ) -> list[tuple[dict[str, Any], RLExperiment, BackendRef]]:
        try:
            ref = self.backend.submit_pack(pack_slots([self._task(item) for item in chunk]))
        except (ScriptError, SubmitError) as exc:
            for item in chunk:
                self.fail(item.body, str(exc), report, attempts=1)
            return []
        note = f" (packed with {len(chunk) - 1} other trial(s))"
        for item in chunk:
            self.submitted(item.body, item.experiment, item.status, ref, 1, False, report, note)
        return [(item.body, item.experiment, ref) for item in chunk]
