"""Several trials of a Sweep in one SLURM job: the bridge's side of
`placement.slurm.trialsPerJob`.

A first attempt of a sweep's child whose placement asks for `trialsPerJob: K > 1` is not
submitted at once: the poll collects them, groups them by namespace, sweep and batch
directives (`array_key`, as the runner does), and submits each group K at a time as one pack
job (`SlurmExperiments.submit_many`, the one pack script). Every trial of a pack gets its own
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

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from rlops.api.experiment import BackendRef, RLExperiment, RLExperimentStatus
from rlops.backends.base import Refused, Submission
from rlops.backends.slurm import slurm_placement
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
        """Submit what waited, each sweep's trials together (`submit_many` puts K in a
        job). Returns each submitted trial with its job, for the poll to observe."""
        deferred, self._deferred = self._deferred, []
        groups: dict[tuple[str | None, str], list[Deferred]] = defaultdict(list)
        for item in deferred:
            meta = item.experiment.metadata
            groups[(meta.namespace, meta.labels[LABEL_SWEEP])].append(item)
        submitted: list[tuple[dict[str, Any], RLExperiment, BackendRef]] = []
        for members in groups.values():
            members.sort(key=lambda d: d.experiment.metadata.name or "")
            answers = self.backend.submit_many([Submission(d.experiment) for d in members])
            shared = Counter(a.job_id for a in answers if isinstance(a, BackendRef))
            self._deferred.extend(members[len(answers) :])  # no room now: the next poll's
            for item, answer in zip(members, answers, strict=False):
                if isinstance(answer, Refused):
                    self.fail(item.body, str(answer), report, attempts=1)
                    continue
                others = shared[answer.job_id] - 1
                note = f" (packed with {others} other trial(s))" if others else ""
                self.submitted(item.body, item.experiment, item.status, answer, 1, False,
                               report, note)  # fmt: skip
                submitted.append((item.body, item.experiment, answer))
        return submitted
