"""A tuning job killed mid-search: no orphan trials, a resume keeps finished trials, a stop keeps
completed ones."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from _tuning_data import XGB_STATIC, Env

from sagelab.tuning import TuningDescription, TuningService


def _until(
    tuning: TuningService, name: str, ready: Callable[[TuningDescription], bool]
) -> TuningDescription:
    deadline = time.monotonic() + 300
    while True:
        d = tuning.describe(name)
        if ready(d):
            return d
        assert not d.is_terminal, f"{name} ended ({d.status}) before the moment came"
        assert time.monotonic() < deadline, f"{name} did not get there in time"
        # Trials last about half a second: a short poll catches one soon after it starts, so
        # it is still training when the test acts on it.
        time.sleep(0.02)


def _running_and_done(d: TuningDescription) -> bool:
    own = [t for t in d.trials if t.tuning_job == d.name]
    return any(t.status == "Completed" for t in own) and any(t.status == "InProgress" for t in own)


def test_tuning_crash_stop_and_resume(env: Env) -> None:
    tuning, jobs = env.session.tuning, env.session.jobs
    spec = {
        "algorithm": "xgboost",
        "inputs": {"train": str(env.cancer)},
        "target": "diagnosis",
        "hyperparameters": {"num_round": 400, **XGB_STATIC},
        "objective": "validation:auc",
        "ranges": {"eta": "0.05:0.3:log", "max_depth": "2:5"},
        # One at a time, so each moment the test waits for lasts a whole trial.
        "max_jobs": 3,
        "max_parallel": 1,
        "random_seed": 2,
    }
    tuning.submit(spec, name="crashy")
    before = _until(tuning, "crashy", _running_and_done)

    # The tuning job's processes die at once (its trials run in sessions of their own).
    os.killpg(jobs.describe("crashy").pid or 0, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while jobs.describe("crashy").status != "Failed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    crashed = tuning.describe("crashy")
    assert "ended without reporting a status" in crashed.info.failure_reason
    orphans = {t.name for t in crashed.trials if t.status == "InProgress"}
    assert orphans  # still training, with nobody following them

    # A new service (any CLI call, any session) stops them when it starts.
    stopped = set(TuningService(env.session.training, recover=False).recover())
    assert orphans <= stopped
    for name in orphans:
        assert jobs.wait(name, timeout=60).status == "Stopped"
    crashed = tuning.describe("crashy")
    assert crashed.counters()["InProgress"] == 0
    finished = {t.name for t in crashed.trials if t.status == "Completed"}
    interrupted = [t for t in crashed.trials if t.status == "Stopped"]
    assert {t.name for t in before.trials if t.status == "Completed"} <= finished

    # Resume, then stop the resumed job while one of its own trials trains.
    tuning.resume("crashy")
    mid = _until(tuning, "crashy-r1", _running_and_done)
    stopped_job = tuning.stop("crashy-r1")
    assert stopped_job.status == "Stopped"
    assert stopped_job.info.result["CompletionReason"] == "Stopped"
    assert stopped_job.counters()["InProgress"] == 0
    kept = {t.name for t in stopped_job.trials if t.status == "Completed"}
    assert finished | {t.name for t in mid.trials if t.status == "Completed"} <= kept

    # Resume again: finished trials are kept, not run again; interrupted ones run again.
    final = tuning.resume("crashy-r1", wait=True)
    assert final.name == "crashy-r2" and final.status == "Completed", final.info.failure_reason
    assert final.counters() == {
        "Completed": 3,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    assert kept <= {t.name for t in final.trials}
    own = [t for t in final.trials if t.tuning_job == "crashy-r2"]
    assert len(own) == 3 - len(kept)
    previous = [t for t in final.trials if t.tuning_job != "crashy-r2"]
    assert min(t.number for t in own) > max(t.number for t in previous)
    ran_again = {tuple(sorted(t.hyperparameters.items())) for t in own}
    ran_before = {tuple(sorted(t.hyperparameters.items())) for t in previous}
    assert not ran_again & ran_before  # no finished configuration ran twice
    rerun = [t for t in stopped_job.trials if t.status == "Stopped"] + interrupted
    assert all(tuple(sorted(t.hyperparameters.items())) in ran_again | ran_before for t in rerun)
    assert final.info.result["ResumedTrials"] == len(kept)
