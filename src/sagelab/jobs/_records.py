"""Reads and guarded writes of job records, shared by the service, the runner and the context.

Every status change is a compare-and-set inside one write transaction (the row
is locked with ``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers), so a job in a final status is never moved back,
whoever writes second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from sagelab.errors import Conflict, NotFound, closest
from sagelab.jobs._info import (
    FAILED,
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    TERMINAL_STATUSES,
    JobInfo,
    MetricPoint,
    StatusTransition,
)
from sagelab.store import Job, JobEvent, JobMetric, Store, utcnow

__all__ = [
    "MAX_RUNTIME_EXCEEDED",
    "RUNNING",
    "STARTING",
    "JobHandle",
    "PendingMetric",
    "StartedJob",
    "finish",
    "job_infos",
    "load_job",
    "mark_started",
    "not_found",
    "record_process",
    "request_stop",
    "set_secondary_status",
    "stop_flag",
    "write_metrics",
]

#: Secondary statuses the jobs package sets itself; job kinds add their own.
STARTING = "Starting"
RUNNING = "Running"
MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"

#: SageMaker's limit on a FailureReason.
_MAX_REASON = 1024


@dataclass(frozen=True)
class JobHandle:
    """Where a job's process runs: what an executor needs to check on it or end it."""

    host: str
    pid: int | None
    start_time: float | None


@dataclass(frozen=True)
class StartedJob:
    """What the runner needs of a job it is about to run."""

    id: int
    name: str
    target: str
    parameters: dict[str, Any]
    max_runtime_seconds: int | None


@dataclass(frozen=True)
class PendingMetric:
    """A metric point logged by a job and not yet written."""

    name: str
    value: float
    step: int
    timestamp: datetime


# --------------------------------------------------------------------------- reads
def _locked(s: Session, name: str) -> Job | None:
    return s.scalars(select(Job).where(Job.name == name).with_for_update()).one_or_none()


def not_found(s: Session, name: str) -> NotFound:
    recent = s.scalars(select(Job.name).order_by(Job.id.desc()).limit(1000)).all()
    return NotFound(
        f"There is no job named {name!r}.{closest(name, recent)} "
        "List jobs with `sagelab jobs list`."
    )


def load_job(s: Session, name: str) -> Job:
    """The job's row.

    Raises:
        NotFound: no job has that name.
    """
    row = s.scalars(select(Job).where(Job.name == name)).one_or_none()
    if row is None:
        raise not_found(s, name)
    return row


def job_infos(s: Session, rows: Sequence[Job]) -> list[JobInfo]:
    """Snapshots of ``rows`` with their transitions and final metrics (three queries in all)."""
    ids = [r.id for r in rows]
    events: dict[int, list[JobEvent]] = {i: [] for i in ids}
    finals: dict[int, list[MetricPoint]] = {i: [] for i in ids}
    if ids:
        for ev in s.scalars(
            select(JobEvent).where(JobEvent.job_id.in_(ids)).order_by(JobEvent.id)
        ).all():
            events[ev.job_id].append(ev)
        last = (
            select(func.max(JobMetric.id))
            .where(JobMetric.job_id.in_(ids))
            .group_by(JobMetric.job_id, JobMetric.name)
        )
        for m in s.scalars(
            select(JobMetric).where(JobMetric.id.in_(last)).order_by(JobMetric.name)
        ).all():
            finals[m.job_id].append(MetricPoint(m.name, m.value, m.step, m.timestamp))
    return [_info(r, events[r.id], finals[r.id]) for r in rows]


def _info(row: Job, events: Sequence[JobEvent], finals: Sequence[MetricPoint]) -> JobInfo:
    transitions = tuple(
        StatusTransition(
            ev.status, ev.message, ev.time, events[i + 1].time if i + 1 < len(events) else None
        )
        for i, ev in enumerate(events)
    )
    return JobInfo(
        name=row.name,
        kind=row.kind,
        status=row.status,
        secondary_status=row.secondary_status,
        failure_reason=row.failure_reason,
        target=row.target,
        parameters=dict(row.parameters),
        result=dict(row.result),
        log_uri=row.log_uri,
        executor=row.executor,
        host=row.host,
        pid=row.pid,
        pid_start_time=row.pid_start_time,
        max_runtime_seconds=row.max_runtime_seconds,
        creation_time=row.creation_time,
        start_time=row.start_time,
        end_time=row.end_time,
        last_modified_time=row.last_modified_time,
        transitions=transitions,
        final_metrics=tuple(finals),
    )


def stop_flag(store: Store, name: str) -> bool:
    """Whether someone asked the job to stop (read by the runner, which may not get a signal)."""
    with store.read() as s:
        return bool(s.scalar(select(Job.stop_requested).where(Job.name == name)))


# --------------------------------------------------------------------------- writes
def _event(s: Session, row: Job, status: str, message: str) -> None:
    s.add(JobEvent(job_id=row.id, status=status, message=message, time=utcnow()))


def record_process(store: Store, name: str, handle: JobHandle) -> None:
    """Remember where the job's process runs."""
    with store.session() as s:
        s.execute(
            update(Job)
            .where(Job.name == name)
            .values(host=handle.host, pid=handle.pid, pid_start_time=handle.start_time)
        )


def mark_started(store: Store, name: str) -> StartedJob | None:
    """Record that the job's process is up; returns what to run, or None if it must not run.

    A job stopped before its process came up is moved to ``Stopped`` here.
    """
    with store.session() as s:
        row = _locked(s, name)
        if row is None or row.status in TERMINAL_STATUSES:
            return None
        if row.status == STOPPING:
            _finish_row(s, row, STOPPED, message="Stopped before it started.")
            return None
        now = utcnow()
        row.start_time = row.start_time or now
        row.secondary_status = RUNNING
        row.last_modified_time = now
        _event(s, row, RUNNING, f"Running {row.target}.")
        return StartedJob(
            row.id, row.name, row.target, dict(row.parameters), row.max_runtime_seconds
        )


def set_secondary_status(store: Store, name: str, status: str, message: str = "") -> bool:
    """Record a secondary-status transition of a running job; False once it is stopping or over."""
    with store.session() as s:
        row = _locked(s, name)
        if row is None or row.status != IN_PROGRESS:
            return False
        row.secondary_status = status
        row.last_modified_time = utcnow()
        _event(s, row, status, message)
        return True


def request_stop(store: Store, name: str, *, secondary: str = STOPPING, message: str = "") -> str:
    """Move a job to ``Stopping``; returns the status it had (``Stopping`` again is a no-op).

    Raises:
        NotFound: no job has that name.
        Conflict: the job has already ended.
    """
    with store.session() as s:
        row = _locked(s, name)
        if row is None:
            raise not_found(s, name)
        before = row.status
        if before in TERMINAL_STATUSES:
            raise Conflict(
                f"The job {name!r} has already ended with status {before}; only a job that "
                "is InProgress can be stopped."
            )
        if before == IN_PROGRESS:
            row.status = STOPPING
            row.secondary_status = secondary
            row.stop_requested = True
            row.last_modified_time = utcnow()
            _event(s, row, secondary, message or "Stop requested.")
        return before


def finish(
    store: Store,
    name: str,
    status: str,
    *,
    reason: str = "",
    result: dict[str, Any] | None = None,
    message: str = "",
) -> bool:
    """Move a job to a final status unless it already has one; returns whether it moved.

    A job that is ``Stopping`` ends ``Stopped`` whatever ended it, keeping the
    ``MaxRuntimeExceeded`` secondary status when that was the cause.
    """
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final job status")
    with store.session() as s:
        row = _locked(s, name)
        if row is None or row.status in TERMINAL_STATUSES:
            return False
        _finish_row(s, row, status, reason=reason, result=result, message=message)
        return True


def _finish_row(
    s: Session,
    row: Job,
    status: str,
    *,
    reason: str = "",
    result: dict[str, Any] | None = None,
    message: str = "",
) -> None:
    if row.status == STOPPING:
        status = STOPPED
    if status == STOPPED:
        secondary = (
            MAX_RUNTIME_EXCEEDED if row.secondary_status == MAX_RUNTIME_EXCEEDED else STOPPED
        )
        reason = ""
    else:
        secondary = status
    now = utcnow()
    row.status = status
    row.failure_reason = reason[:_MAX_REASON] if status == FAILED else ""
    if result is not None:
        row.result = result
    row.end_time = now
    row.last_modified_time = now
    if secondary != row.secondary_status:
        row.secondary_status = secondary
        _event(s, row, secondary, message or (reason if status == FAILED else ""))
    elif message:
        _event(s, row, secondary, message)


def write_metrics(store: Store, job_id: int, points: Iterable[PendingMetric]) -> int:
    """Append metric points in one transaction; returns how many."""
    rows = [
        {
            "job_id": job_id,
            "name": p.name,
            "value": p.value,
            "step": p.step,
            "timestamp": p.timestamp,
        }
        for p in points
    ]
    if rows:
        with store.session() as s:
            s.execute(insert(JobMetric), rows)
    return len(rows)
