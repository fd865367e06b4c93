"""Jobs whose process vanished are settled; a recycled pid is not taken for the job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import psutil
import pytest
from _jobtools import end_job_processes, fn, wait_until

from sagelab.config import Settings
from sagelab.errors import Conflict
from sagelab.jobs import JobService
from sagelab.jobs._records import finish, mark_started, set_secondary_status
from sagelab.store import Job, Store, utcnow

HOST = socket.gethostname()


def _insert(store: Store, name: str, **fields: Any) -> None:
    values: dict[str, Any] = {
        "name": name,
        "kind": "python",
        "target": "sagelab.jobs._python:run_python",
        "host": HOST,
        "status": "InProgress",
        "secondary_status": "Running",
    }
    values.update(fields)
    with store.session() as s:
        s.add(Job(**values))


def test_killed_jobs_are_marked_failed(jobs: JobService, store: Store, settings: Settings) -> None:
    seen = jobs.submit("python", {"entry_point": fn("sleepy")})
    unseen = jobs.submit("python", {"entry_point": fn("sleepy")})
    for job in (seen, unseen):
        name = job.name
        wait_until(lambda: jobs.describe(name).secondary_status == "Running")  # noqa: B023
        end_job_processes(job, kill=True)  # SIGKILL to the whole group: nobody reports

    # Looking at the job finds its process gone...
    info = jobs.describe(seen.name)
    assert info.status == "Failed"
    assert info.failure_reason == (
        f"AlgorithmError: the job's process (pid {seen.pid}) ended without reporting a status; "
        "it may have been killed or crashed."
    )
    # ...and so does a service starting up afterwards.
    fresh = JobService(store, settings, recover=False)
    assert fresh.recover() == [unseen.name]
    assert fresh.describe(unseen.name).status == "Failed"
    assert fresh.recover() == []


def test_recover_tells_a_recycled_pid_from_the_job(jobs: JobService, store: Store) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = psutil.Process(sleeper.pid).create_time()
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        old = utcnow() - timedelta(minutes=10)
        _insert(store, "recycled", pid=sleeper.pid, pid_start_time=started - 1000)
        _insert(store, "alive", pid=sleeper.pid, pid_start_time=started)
        _insert(store, "gone", pid=gone.pid, pid_start_time=started)
        _insert(store, "stopping-gone", pid=gone.pid, pid_start_time=started, status="Stopping")
        _insert(store, "elsewhere", pid=gone.pid, pid_start_time=started, host="not-this-host")
        _insert(store, "never-launched", creation_time=old)
        _insert(store, "launching")
        _insert(store, "finished", pid=gone.pid, pid_start_time=started, status="Completed")

        recovered = jobs.recover()
        assert sorted(recovered) == ["gone", "never-launched", "recycled", "stopping-gone"]
        status = {i.name: i.status for i in jobs.list()}
        assert status == {
            "recycled": "Failed",
            "alive": "InProgress",
            "gone": "Failed",
            "stopping-gone": "Stopped",
            "elsewhere": "InProgress",
            "never-launched": "Failed",
            "launching": "InProgress",
            "finished": "Completed",
        }
        assert "never started" in jobs.describe("never-launched").failure_reason
        assert f"(pid {sleeper.pid})" in jobs.describe("recycled").failure_reason
        assert jobs.describe("stopping-gone").secondary_status == "Stopped"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_final_statuses_never_move_back(jobs: JobService, store: Store) -> None:
    _insert(store, "done", status="Completed", secondary_status="Completed")
    assert not finish(store, "done", "Failed", reason="AlgorithmError: late")
    assert not finish(store, "done", "Stopped")
    assert not set_secondary_status(store, "done", "Training")
    assert mark_started(store, "done") is None
    with pytest.raises(Conflict, match="already ended with status Completed"):
        jobs.stop("done")
    assert jobs.recover() == []
    info = jobs.describe("done")
    assert (info.status, info.secondary_status, info.failure_reason) == (
        "Completed",
        "Completed",
        "",
    )

    # Stopping only ever ends Stopped, whatever tries to end it.
    _insert(store, "halting", status="Stopping", secondary_status="Stopping", host="elsewhere")
    assert finish(store, "halting", "Completed", result={"x": 1})
    assert jobs.describe("halting").status == "Stopped"


def test_racing_final_writes_have_one_winner(store: Store) -> None:
    names = [f"race-{i}" for i in range(8)]
    for name in names:
        _insert(store, name, host="elsewhere")
    wins: dict[str, list[str]] = {name: [] for name in names}
    barrier = threading.Barrier(2)

    def end(name: str, status: str) -> None:
        barrier.wait()
        if finish(store, name, status, reason="AlgorithmError: lost the race"):
            wins[name].append(status)

    for name in names:
        threads = [threading.Thread(target=end, args=(name, s)) for s in ("Completed", "Failed")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    with store.read() as s:
        final = {j.name: j.status for j in s.query(Job).filter(Job.name.in_(names))}
    for name in names:
        assert len(wins[name]) == 1, wins[name]
        assert final[name] == wins[name][0]


def test_a_child_killed_alone_leaves_a_clear_reason(jobs: JobService) -> None:
    """SIGKILL to the worker only (as the OOM killer would): the supervisor reports it."""
    job = jobs.submit("python", {"entry_point": fn("sleepy")})
    wait_until(lambda: jobs.describe(job.name).secondary_status == "Running")
    assert job.pid is not None
    # Running is recorded when the job's process is up, just before it forks the worker.
    wait_until(lambda: psutil.Process(job.pid).children(), what="the job's worker process")
    workers = psutil.Process(job.pid).children()
    assert len(workers) == 1
    os.kill(workers[0].pid, signal.SIGKILL)
    info = jobs.wait(job.name, timeout=15)
    assert info.status == "Failed"
    assert info.failure_reason.startswith(
        "AlgorithmError: the job's process was killed by SIGKILL (9)"
    )
