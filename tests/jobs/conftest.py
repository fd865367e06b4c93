"""A job service per test, and the clean-up of every process its jobs started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _jobtools import end_job_processes

from sagelab.config import Settings
from sagelab.jobs import JobService
from sagelab.store import Store


@pytest.fixture
def jobs(store: Store, settings: Settings) -> Iterator[JobService]:
    service = JobService(store, settings)
    yield service
    for info in service.list(limit=1000):
        end_job_processes(info, kill=not info.is_terminal)
    service.close()
