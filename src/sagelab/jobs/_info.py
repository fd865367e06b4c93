"""What the jobs package hands out: statuses and frozen snapshots of a job.

Snapshots are plain values, never live ORM rows, so they can cross threads,
processes and the wire. ``as_dict`` answers in the shapes of SageMaker's
``DescribeTrainingJob``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = [
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS",
    "JOB_STATUSES",
    "STOPPED",
    "STOPPING",
    "TERMINAL_STATUSES",
    "JobInfo",
    "MetricPoint",
    "StatusTransition",
]

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
STOPPING = "Stopping"
STOPPED = "Stopped"

#: Every status a job can have, in lifecycle order.
JOB_STATUSES: tuple[str, ...] = (IN_PROGRESS, STOPPING, COMPLETED, FAILED, STOPPED)
#: Statuses a job never leaves.
TERMINAL_STATUSES: frozenset[str] = frozenset({COMPLETED, FAILED, STOPPED})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class MetricPoint:
    """One point of a job's metric time series."""

    name: str
    value: float
    step: int
    timestamp: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "MetricName": self.name,
            "Value": self.value,
            "Step": self.step,
            "Timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True)
class StatusTransition:
    """A secondary-status transition; ``end_time`` is when the next one began."""

    status: str
    message: str
    start_time: datetime
    end_time: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Status": self.status, "StartTime": self.start_time.isoformat()}
        if self.end_time is not None:
            out["EndTime"] = self.end_time.isoformat()
        if self.message:
            out["StatusMessage"] = self.message
        return out


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one job."""

    name: str
    kind: str
    status: str
    secondary_status: str
    failure_reason: str
    target: str
    parameters: dict[str, Any]
    result: dict[str, Any]
    log_uri: str
    executor: str
    host: str
    pid: int | None
    pid_start_time: float | None
    max_runtime_seconds: int | None
    creation_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    last_modified_time: datetime
    transitions: tuple[StatusTransition, ...] = field(default=())
    final_metrics: tuple[MetricPoint, ...] = field(default=())

    @property
    def is_terminal(self) -> bool:
        """True once the job is Completed, Failed or Stopped."""
        return self.status in TERMINAL_STATUSES

    @property
    def log_path(self) -> Path | None:
        """The log file, when the log lives on a local file system."""
        parsed = urlparse(self.log_uri)
        return Path(unquote(parsed.path)) if parsed.scheme == "file" else None

    def as_dict(self) -> dict[str, Any]:
        """The job in the shape of SageMaker's DescribeTrainingJob answer."""
        out: dict[str, Any] = {
            "JobName": self.name,
            "JobKind": self.kind,
            "JobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "FailureReason": self.failure_reason or None,
            "Target": self.target,
            "Parameters": dict(self.parameters),
            "Result": dict(self.result),
            "Executor": self.executor,
            "Host": self.host,
            "ProcessId": self.pid,
            "CreationTime": _iso(self.creation_time),
            "StartTime": _iso(self.start_time),
            "EndTime": _iso(self.end_time),
            "LastModifiedTime": _iso(self.last_modified_time),
            "LogUri": self.log_uri,
            "SecondaryStatusTransitions": [t.as_dict() for t in self.transitions],
            "FinalMetricDataList": [
                {"MetricName": m.name, "Value": m.value, "Timestamp": m.timestamp.isoformat()}
                for m in self.final_metrics
            ],
        }
        if self.max_runtime_seconds is not None:
            out["StoppingCondition"] = {"MaxRuntimeInSeconds": self.max_runtime_seconds}
        return out
