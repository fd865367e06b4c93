"""Jobs: long work with SageMaker's lifecycle, each run in a process of its own.

A job has a kind (the function it runs), parameters, a status
(``InProgress`` → ``Completed`` | ``Failed``, or ``Stopping`` → ``Stopped``), a
secondary status with its transitions, a failure reason (``ClientError: ...``
for bad input, ``AlgorithmError: ...`` for a failure inside the work), a log
and metric time series. Training jobs, tuning trials, ETL and batch transform
all run through :class:`JobService`::

    from sagelab.jobs import JobService
    jobs = JobService(store, settings)
    info = jobs.submit("python", {"entry_point": "train.py:main", "epochs": 3}, wait=True)

A job function has the signature ``fn(ctx: JobContext, **parameters) -> dict | None``.
"""

from __future__ import annotations

from sagelab._plugins import load_target
from sagelab.jobs._context import JobContext
from sagelab.jobs._errors import JobStopped, WaitTimeout
from sagelab.jobs._executors import (
    Executor,
    JobHandle,
    LaunchRequest,
    create_executor,
    executor_names,
    register_executor,
)
from sagelab.jobs._info import (
    JOB_STATUSES,
    TERMINAL_STATUSES,
    JobInfo,
    MetricPoint,
    StatusTransition,
)
from sagelab.jobs._kinds import job_kind_target, job_kinds, register_job_kind
from sagelab.jobs._local import LocalExecutor
from sagelab.jobs._service import JobService

__all__ = [
    "JOB_STATUSES",
    "TERMINAL_STATUSES",
    "Executor",
    "JobContext",
    "JobHandle",
    "JobInfo",
    "JobService",
    "JobStopped",
    "LaunchRequest",
    "LocalExecutor",
    "MetricPoint",
    "StatusTransition",
    "WaitTimeout",
    "create_executor",
    "executor_names",
    "job_kind_target",
    "job_kinds",
    "load_target",
    "register_executor",
    "register_job_kind",
]
