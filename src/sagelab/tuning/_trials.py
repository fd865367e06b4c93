"""Trials: training jobs named ``<tuning-job>-<NNN>-<8 hex>``, found by that name.

A trial is an ordinary training job (``sagelab jobs list`` shows it, with its
metrics and log); the tuning job it belongs to is in its name, as SageMaker
names them. What only the tuning job knows about its trials (which were stopped
early, at which step) it records in its own metric series, so a reader sees it
while the job runs and after a crash: ``tuning:early_stopped`` (step: the trial
number; value: the step it was stopped at), ``tuning:objective`` and
``tuning:best_objective`` (step: the trial number).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sagelab.training import TRAINING_KIND

if TYPE_CHECKING:
    from sagelab.jobs import JobInfo, JobService
    from sagelab.tuning._spec import TuningSpec

__all__ = [
    "BEST_METRIC",
    "EARLY_STOPPED_METRIC",
    "OBJECTIVE_METRIC",
    "TrialSummary",
    "best_of",
    "early_stops",
    "intermediate_values",
    "summarize_trial",
    "trial_jobs",
    "trial_name",
    "trial_number",
    "tuning_job_of",
]

OBJECTIVE_METRIC = "tuning:objective"
BEST_METRIC = "tuning:best_objective"
EARLY_STOPPED_METRIC = "tuning:early_stopped"

_TRIAL = re.compile(r"^(?P<tuning>.+)-(?P<number>\d{3,})-[0-9a-f]{8}$")
#: Job listings are capped; a tuning job has at most 500 trials.
_LIST_LIMIT = 10_000


def trial_name(tuning_job: str, number: int) -> str:
    """A new trial's name: ``<tuning-job>-<NNN>-<8 hex>``."""
    return f"{tuning_job}-{number:03d}-{secrets.token_hex(4)}"


def trial_number(tuning_job: str, name: str) -> int | None:
    """The number of the trial ``name`` of ``tuning_job``, or None if it is not one."""
    match = _TRIAL.match(name)
    if match is None or match.group("tuning") != tuning_job:
        return None
    return int(match.group("number"))


def tuning_job_of(name: str) -> str | None:
    """The tuning job a trial's name points at, or None if it is not shaped like a trial's."""
    match = _TRIAL.match(name)
    return match.group("tuning") if match else None


def trial_jobs(jobs: JobService, tuning_job: str) -> list[JobInfo]:
    """The training jobs of ``tuning_job``, by trial number.

    Raises:
        InvalidInput: the store refused the listing.
    """
    found = jobs.list(kind=TRAINING_KIND, name_contains=f"{tuning_job}-", limit=_LIST_LIMIT)
    numbered = [(trial_number(tuning_job, i.name), i) for i in found]
    return [
        i for n, i in sorted((p for p in numbered if p[0] is not None), key=lambda p: p[0] or 0)
    ]


def early_stops(jobs: JobService, tuning_job: str) -> dict[int, int]:
    """Trial number -> the step it was stopped at, for the trials the tuning job stopped early.

    Raises:
        NotFound: no such job.
    """
    return {p.step: int(p.value) for p in jobs.metrics(tuning_job, EARLY_STOPPED_METRIC)}


def intermediate_values(jobs: JobService, trial: str, objective: str) -> dict[int, float]:
    """The objective at each step of a trial, steps counted as resource used (metric step + 1)."""
    return {p.step + 1: p.value for p in jobs.metrics(trial, objective)}


@dataclass(frozen=True)
class TrialSummary:
    """One trial of a tuning job (SageMaker's HyperParameterTrainingJobSummary).

    Attributes:
        name: the training job.
        number: its number in the search (1, 2...).
        tuning_job: the tuning job that started it (an earlier one for inherited trials).
        status: the training job's status.
        hyperparameters: the tuned hyperparameters' values.
        objective: the final objective (Completed), or the last value reported (Stopped,
            InProgress); None when there is none.
        objective_status: ``Succeeded``, ``Pending`` or ``Failed``.
        early_stopped: the tuning job stopped it as a weak trial.
        stopped_at: the step it was stopped at.
        failure_reason: why it failed.
        training_seconds: time spent training (from its status transitions).
    """

    name: str
    number: int
    tuning_job: str
    status: str
    hyperparameters: dict[str, Any]
    objective: float | None
    objective_status: str
    early_stopped: bool = False
    stopped_at: int | None = None
    failure_reason: str = ""
    creation_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    training_seconds: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def finished(self) -> bool:
        """Ended in a way the search learns from: completed, stopped early, or failed."""
        return self.status in ("Completed", "Failed") or self.early_stopped

    def as_dict(self, objective: str, objective_type: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrialNumber": self.number,
            "TuningJobName": self.tuning_job,
            "TrainingJobStatus": self.status,
            "TunedHyperParameters": dict(self.hyperparameters),
            "ObjectiveStatus": self.objective_status,
            "EarlyStopped": self.early_stopped,
            "CreationTime": _iso(self.creation_time),
            "TrainingStartTime": _iso(self.start_time),
            "TrainingEndTime": _iso(self.end_time),
            "TrainingTimeInSeconds": self.training_seconds,
        }
        if self.objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective_type,
                "MetricName": objective,
                "Value": self.objective,
            }
        if self.stopped_at is not None:
            out["StoppedAtStep"] = self.stopped_at
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _training_seconds(info: JobInfo) -> float | None:
    """Seconds in the ``Training`` secondary status (to its next transition or the end)."""
    if isinstance(info.result.get("TrainingTimeInSeconds"), int | float):
        return float(info.result["TrainingTimeInSeconds"])
    total = None
    for t in info.transitions:
        if t.status != "Training":
            continue
        end = t.end_time or info.end_time
        if end is not None:
            total = (total or 0.0) + (end - t.start_time).total_seconds()
    return total


def summarize_trial(
    jobs: JobService,
    spec: TuningSpec,
    info: JobInfo,
    *,
    tuning_job: str,
    number: int,
    stopped_at: int | None,
) -> TrialSummary:
    """What a tuning job's description says of one of its trials.

    Raises:
        NotFound: the trial's job has gone.
    """
    given = info.parameters.get("hyperparameters") or {}
    tuned = {r.name: given.get(r.name) for r in spec.ranges}
    intermediate: dict[int, float] = {}
    objective: float | None = None
    if info.status == "Completed":
        value = (info.result.get("FinalMetrics") or {}).get(spec.objective)
        objective = float(value) if isinstance(value, int | float) else None
    if info.status != "Failed":
        intermediate = intermediate_values(jobs, info.name, spec.objective)
        if objective is None and intermediate:
            objective = intermediate[max(intermediate)]
    if not info.is_terminal:
        status = "Pending"
    else:
        status = "Succeeded" if objective is not None and info.status != "Failed" else "Failed"
    return TrialSummary(
        name=info.name,
        number=number,
        tuning_job=tuning_job,
        status=info.status,
        hyperparameters=tuned,
        objective=objective,
        objective_status=status,
        early_stopped=stopped_at is not None,
        stopped_at=stopped_at,
        failure_reason=info.failure_reason,
        creation_time=info.creation_time,
        start_time=info.start_time,
        end_time=info.end_time,
        training_seconds=_training_seconds(info),
        intermediate=intermediate,
    )


def best_of(trials: Iterable[TrialSummary], maximize: bool) -> TrialSummary | None:
    """The completed trial with the best objective (a stopped trial has no model); of
    trials that tie, the one that ended first (a warm start's parent before its child)."""
    done = [t for t in trials if t.status == "Completed" and t.objective is not None]
    if not done:
        return None
    sign = 1.0 if maximize else -1.0
    return max(done, key=lambda t: (sign * (t.objective or 0.0), -_ended(t)))


def _ended(trial: TrialSummary) -> float:
    return trial.end_time.timestamp() if trial.end_time is not None else float("inf")
