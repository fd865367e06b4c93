"""The door to jobs: submit, describe, list, wait, stop, logs, metrics, recover.

A ``JobService`` hands out snapshots and prints nothing; the CLI, the API and
the later stages (training, tuning, ETL, batch transform) all go through it.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sagelab.config import Settings
from sagelab.errors import Conflict, InvalidInput, closest
from sagelab.jobs._errors import WaitTimeout
from sagelab.jobs._executors import Executor, LaunchRequest, create_executor
from sagelab.jobs._info import (
    FAILED,
    IN_PROGRESS,
    JOB_STATUSES,
    STOPPED,
    STOPPING,
    TERMINAL_STATUSES,
    JobInfo,
    MetricPoint,
)
from sagelab.jobs._kinds import job_kind_target
from sagelab.jobs._records import (
    STARTING,
    JobHandle,
    finish,
    job_infos,
    load_job,
    record_process,
    request_stop,
)
from sagelab.store import Job, JobEvent, JobMetric, Store, utcnow

__all__ = ["JobService"]

# SageMaker's job-name rule.
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
#: A job whose process was never recorded is given up on after this long.
_LAUNCH_TIMEOUT = timedelta(minutes=2)
#: SageMaker's ceiling on MaxRuntimeInSeconds (28 days).
_MAX_RUNTIME_CEILING = 28 * 24 * 3600


def _lost_reason(pid: int | None) -> str:
    if pid is None:
        return "AlgorithmError: the job's process never started; see the job's log."
    return (
        f"AlgorithmError: the job's process (pid {pid}) ended without reporting a status; "
        "it may have been killed or crashed."
    )


class JobService:
    """Jobs over the metadata store: each runs in a process of its own, started by an executor.

    Creating the service recovers this host's jobs whose process has gone (see
    :meth:`recover`).

    Args:
        store: the metadata store.
        settings: the settings jobs run under (passed on to their processes).
        recover: run :meth:`recover` now.
    """

    def __init__(self, store: Store, settings: Settings, *, recover: bool = True) -> None:
        self.store = store
        self.settings = settings
        self._host = socket.gethostname()
        self._executors: dict[str, Executor] = {}
        if recover:
            self.recover()

    # ------------------------------------------------------------------ submit
    def submit(
        self,
        kind: str,
        parameters: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        max_runtime_seconds: int | None = None,
        executor: str = "local",
        wait: bool = False,
    ) -> JobInfo:
        """Create a job and start its process.

        Args:
            kind: the job kind (``python``, ...); see :func:`sagelab.jobs.job_kinds`.
            parameters: keyword arguments for the job's function, JSON-serialisable.
            name: the job's name; by default ``<kind>-YYYYmmdd-HHMMSS-xxxx``.
            max_runtime_seconds: stop the job (secondary status ``MaxRuntimeExceeded``)
                after this long.
            executor: which executor runs it.
            wait: return only once the job has ended.

        Raises:
            InvalidInput: unknown kind or executor, bad name, parameters or max runtime.
            Conflict: a job with that name exists.
        """
        target = job_kind_target(kind)
        params = self._check_parameters(parameters)
        if max_runtime_seconds is not None and (
            isinstance(max_runtime_seconds, bool)
            or not isinstance(max_runtime_seconds, int)
            or not 1 <= max_runtime_seconds <= _MAX_RUNTIME_CEILING
        ):
            raise InvalidInput(
                f"max_runtime_seconds must be a whole number of seconds in [1, "
                f"{_MAX_RUNTIME_CEILING}]; got {max_runtime_seconds!r}."
            )
        runner = self._executor(executor)
        if name is not None:
            self._check_name(name)
        for attempt in range(5):
            job_name = name if name is not None else self._generated_name(kind)
            log_path = self.settings.logs_dir / "jobs" / f"{job_name}.log"
            try:
                self._insert(
                    kind, job_name, target, params, max_runtime_seconds, executor, log_path
                )
                break
            except IntegrityError as exc:
                if name is not None or attempt == 4:
                    raise Conflict(
                        f"A job named {job_name!r} already exists. Choose another name, or "
                        "leave it out to have one generated."
                    ) from exc
        try:
            handle = runner.launch(LaunchRequest(job_name, self.settings, log_path))
        except Exception as exc:
            finish(
                self.store,
                job_name,
                FAILED,
                reason=f"AlgorithmError: the job's process could not be started: {exc}",
            )
        else:
            record_process(self.store, job_name, handle)
        return self.wait(job_name) if wait else self.describe(job_name)

    def _insert(
        self,
        kind: str,
        name: str,
        target: str,
        params: dict[str, Any],
        max_runtime: int | None,
        executor: str,
        log_path: Path,
    ) -> None:
        now = utcnow()
        with self.store.session() as s:
            row = Job(
                name=name,
                kind=kind,
                status=IN_PROGRESS,
                secondary_status=STARTING,
                target=target,
                parameters=params,
                result={},
                log_uri=log_path.absolute().as_uri(),
                executor=executor,
                host=self._host,
                max_runtime_seconds=max_runtime,
                creation_time=now,
                last_modified_time=now,
            )
            s.add(row)
            s.flush()
            s.add(JobEvent(job_id=row.id, status=STARTING, message="Launching the job.", time=now))

    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not _JOB_NAME.match(name):
            raise InvalidInput(
                f"The job name {name!r} is not valid: use 1-63 letters, digits and hyphens, "
                "starting and ending with a letter or digit (e.g. 'churn-xgb-01')."
            )

    @staticmethod
    def _generated_name(kind: str) -> str:
        prefix = re.sub(r"[^a-zA-Z0-9]+", "-", kind).strip("-")[:42] or "job"
        stamp = utcnow().strftime("%Y%m%d-%H%M%S")
        return f"{prefix}-{stamp}-{secrets.token_hex(2)}"

    @staticmethod
    def _check_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
        if parameters is None:
            return {}
        if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
            raise InvalidInput(
                f"A job's parameters must be a dict with string keys; got {parameters!r}."
            )
        try:
            checked: dict[str, Any] = json.loads(json.dumps(parameters, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"A job's parameters must be JSON (strings, numbers, booleans, lists, dicts): "
                f"{exc}. Pass paths and dates as strings."
            ) from exc
        return checked

    def _executor(self, name: str) -> Executor:
        executor = self._executors.get(name)
        if executor is None:
            executor = self._executors[name] = create_executor(name)
        return executor

    def _known_executor(self, name: str) -> Executor | None:
        """The executor a stored job names, or None if this process does not know it."""
        if self._executors.get(name) is None:
            try:
                self._executors[name] = create_executor(name)
            except InvalidInput:
                return None
        return self._executors[name]

    # ------------------------------------------------------------------ read
    def describe(self, name: str) -> JobInfo:
        """A snapshot of the job; a job whose process is gone is settled first.

        Raises:
            NotFound: no job has that name.
        """
        info = self._read(name)
        if not info.is_terminal and self._settle(info):
            info = self._read(name)
        return info

    def _read(self, name: str) -> JobInfo:
        with self.store.read() as s:
            return job_infos(s, [load_job(s, name)])[0]

    def list(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        name_contains: str | None = None,
        limit: int = 100,
    ) -> list[JobInfo]:
        """Jobs, newest first.

        Raises:
            InvalidInput: an unknown status, or a limit outside [1, 10000].
        """
        if status is not None and status not in JOB_STATUSES:
            raise InvalidInput(
                f"Unknown job status {status!r}.{closest(str(status), JOB_STATUSES)} "
                f"Job statuses: {', '.join(JOB_STATUSES)}."
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be an integer in [1, 10000]; got {limit!r}.")
        query = select(Job).order_by(Job.creation_time.desc(), Job.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(Job.kind == kind)
        if status is not None:
            query = query.where(Job.status == status)
        if name_contains:
            query = query.where(Job.name.icontains(name_contains, autoescape=True))
        with self.store.read() as s:
            infos = job_infos(s, s.scalars(query).all())
        if any(self._settle(i) for i in infos if not i.is_terminal):
            settled = {i.name: self._read(i.name) for i in infos if not i.is_terminal}
            infos = [settled.get(i.name, i) for i in infos]
            if status is not None:
                infos = [i for i in infos if i.status == status]
        return infos

    def wait(self, name: str, timeout: float | None = None, poll: float = 0.2) -> JobInfo:
        """Block until the job ends; returns its final snapshot.

        Raises:
            NotFound: no job has that name.
            InvalidInput: ``poll`` is not positive.
            WaitTimeout: the job had not ended after ``timeout`` seconds.
        """
        if not poll > 0:
            raise InvalidInput(f"poll must be a positive number of seconds; got {poll!r}.")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.describe(name)
            if info.is_terminal:
                return info
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"The job {name!r} is still {info.status} ({info.secondary_status}) after "
                    f"{timeout} s. Wait longer, or stop it with `sagelab jobs stop {name}`."
                )
            time.sleep(poll if deadline is None else min(poll, max(deadline - time.monotonic(), 0)))

    def metrics(self, name: str, metric_name: str | None = None) -> builtins.list[MetricPoint]:
        """The job's metric points, by metric name, in the order they were logged.

        A running job writes its points in batches about every half second, so
        the newest may not be here yet (see :class:`~sagelab.jobs.JobContext`).

        Raises:
            NotFound: no job has that name.
        """
        with self.store.read() as s:
            job = load_job(s, name)
            query = select(JobMetric).where(JobMetric.job_id == job.id)
            if metric_name is not None:
                query = query.where(JobMetric.name == metric_name)
            rows = s.scalars(query.order_by(JobMetric.name, JobMetric.id)).all()
            return [MetricPoint(r.name, r.value, r.step, r.timestamp) for r in rows]

    def logs(self, name: str, *, follow: bool = False, poll: float = 0.2) -> Iterator[str]:
        """The lines of the job's log (without line ends); ``follow`` keeps reading until it ends.

        Raises:
            NotFound: no job has that name (at once, not on the first line).
        """
        return self._log_lines(self.describe(name), follow, poll)

    def _log_lines(self, info: JobInfo, follow: bool, poll: float) -> Iterator[str]:
        path = info.log_path
        if path is None:
            return
        pending = ""
        handle = None
        try:
            while True:
                if handle is None and path.exists():
                    handle = path.open("r", encoding="utf-8", errors="replace")
                chunk = handle.read(1 << 16) if handle is not None else ""
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split("\n")
                    yield from lines
                    continue
                if not follow or info.is_terminal:
                    break
                time.sleep(poll)
                info = self.describe(info.name)
                if info.is_terminal:
                    self._wait_for_exit(info)
        finally:
            if handle is not None:
                handle.close()
        if pending:
            yield pending

    def _wait_for_exit(self, info: JobInfo, timeout: float = 5.0) -> None:
        """Give an ended job's processes a moment to exit, so its last log lines are in."""
        executor = self._known_executor(info.executor)
        if executor is None or info.pid is None:
            return
        handle = self._handle(info)
        deadline = time.monotonic() + timeout
        while executor.is_alive(handle) and time.monotonic() < deadline:
            time.sleep(0.05)

    # ------------------------------------------------------------------ stop & recover
    def stop(self, name: str) -> JobInfo:
        """Ask a job to stop; returns at once with the job ``Stopping`` (or already ``Stopped``).

        The job's process group gets SIGTERM; the job ends ``Stopped``, and its
        processes are killed if they have not ended within the executor's grace period.

        Raises:
            NotFound: no job has that name.
            Conflict: the job has already ended.
        """
        request_stop(self.store, name, message="Stop requested by the user.")
        info = self._read(name)
        executor = self._known_executor(info.executor)
        if executor is not None and info.pid is not None:
            executor.terminate(self._handle(info))
        return self.describe(name)

    def recover(self) -> builtins.list[str]:
        """Settle this host's unfinished jobs whose process is gone; returns their names.

        A job left ``InProgress`` is marked ``Failed`` with the reason; one left
        ``Stopping`` is marked ``Stopped``. A job is only settled on evidence: its
        recorded pid is gone or now names another program (told apart by start time).
        """
        with self.store.read() as s:
            rows = s.scalars(
                select(Job)
                .where(Job.status.in_([IN_PROGRESS, STOPPING]), Job.host == self._host)
                .order_by(Job.id)
            ).all()
            infos = job_infos(s, rows)
        return [i.name for i in infos if self._settle(i)]

    @staticmethod
    def _handle(info: JobInfo) -> JobHandle:
        return JobHandle(host=info.host, pid=info.pid, start_time=info.pid_start_time)

    def _settle(self, info: JobInfo) -> bool:
        """Mark an unfinished job whose process is gone; returns whether it was marked."""
        if info.status in TERMINAL_STATUSES:
            return False
        if info.pid is None:
            if utcnow() - info.creation_time < _LAUNCH_TIMEOUT:
                return False
        else:
            executor = self._known_executor(info.executor)
            if executor is None or executor.is_alive(self._handle(info)):
                return False
        status = STOPPED if info.status == STOPPING else FAILED
        return finish(self.store, info.name, status, reason=_lost_reason(info.pid))

    def close(self) -> None:
        """Release the executors' resources (running jobs carry on)."""
        for executor in self._executors.values():
            executor.close()
