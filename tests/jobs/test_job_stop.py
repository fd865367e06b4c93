"""Stopping jobs: cooperative, interrupted, deaf to SIGTERM, out of runtime, not yet started."""

from __future__ import annotations

import time

import pytest
from _jobtools import fn, wait_until

from sagelab.errors import Conflict
from sagelab.jobs import JobService, WaitTimeout, register_executor
from sagelab.store import utcnow


def _log_has(jobs: JobService, name: str, text: str) -> bool:
    return any(text in line for line in jobs.logs(name))


def test_stop_and_max_runtime(jobs: JobService) -> None:
    register_executor("local-quick", fn("quick_local"))
    patient = jobs.submit("python", {"entry_point": fn("patient")})
    sleepy = jobs.submit("python", {"entry_point": fn("sleepy")})
    stubborn = jobs.submit("python", {"entry_point": fn("stubborn")}, executor="local-quick")
    capped = jobs.submit("python", {"entry_point": fn("sleepy")}, max_runtime_seconds=1)
    early = jobs.submit("python", {"entry_point": fn("sleepy")})
    # Stopped before its process is up: it must still end Stopped, never run on.
    assert jobs.stop(early.name).status in ("Stopping", "Stopped")

    # Metrics are readable while the job runs (flushed every half second).
    wait_until(lambda: len(jobs.metrics(patient.name)) >= 3, what="live metrics")
    assert jobs.describe(patient.name).status == "InProgress"
    with pytest.raises(WaitTimeout, match="still InProgress"):
        jobs.wait(patient.name, timeout=0.1)
    wait_until(lambda: jobs.describe(sleepy.name).secondary_status == "Running")
    wait_until(lambda: _log_has(jobs, stubborn.name, "Calling"), what="stubborn to start")
    time.sleep(0.3)  # let it get past its signal.signal(SIGTERM, SIG_IGN)

    asked = utcnow()
    began = time.monotonic()
    for job in (patient, sleepy, stubborn):
        assert jobs.stop(job.name).status in ("Stopping", "Stopped")
    assert time.monotonic() - began < 2.0, "stop() must return at once"
    ended = {job.name: jobs.wait(job.name, timeout=20) for job in (patient, sleepy, stubborn)}
    for info in ended.values():
        assert (info.status, info.secondary_status, info.failure_reason) == (
            "Stopped",
            "Stopped",
            "",
        )
        assert info.end_time is not None
        assert (info.end_time - asked).total_seconds() < 5.0, info.name

    # The cooperative job ended on its own terms and kept its result.
    assert ended[patient.name].result["iterations"] >= 3
    # The sleeper was interrupted mid-sleep at once.
    assert (ended[sleepy.name].end_time - asked).total_seconds() < 2.0  # type: ignore[operator]
    # The one that ignores SIGTERM was killed after the 1 s grace period.
    assert _log_has(jobs, stubborn.name, "did not stop within 1 s")
    statuses = [t.status for t in ended[sleepy.name].transitions]
    assert statuses == ["Starting", "Running", "Stopping", "Stopped"]

    info = jobs.wait(capped.name, timeout=20)
    assert (info.status, info.secondary_status) == ("Stopped", "MaxRuntimeExceeded")
    assert info.start_time is not None and info.end_time is not None
    assert 1.0 <= (info.end_time - info.start_time).total_seconds() < 5.0
    assert "MaxRuntimeExceeded" in [t.status for t in info.transitions]
    assert info.as_dict()["StoppingCondition"] == {"MaxRuntimeInSeconds": 1}

    assert jobs.wait(early.name, timeout=20).status == "Stopped"

    with pytest.raises(Conflict, match="already ended with status Stopped"):
        jobs.stop(sleepy.name)
