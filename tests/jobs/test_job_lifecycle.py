"""Jobs run to their end in real processes: results, metrics, logs and failure reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from _jobtools import fn

from sagelab.config import Settings
from sagelab.errors import InvalidInput
from sagelab.jobs import JobService, register_job_kind


def test_outcomes_results_metrics_logs_and_listing(jobs: JobService, settings: Settings) -> None:
    register_job_kind("test-work", fn("work"))
    # Started together, so their processes come up side by side.
    done = jobs.submit("test-work", {"n": 2500, "lines": 5, "pause": 0.05}, name="done-1")
    submitted = {
        "client": jobs.submit("python", {"entry_point": fn("bad_input")}),
        "algorithm": jobs.submit("python", {"entry_point": fn("crash")}),
        "no-module": jobs.submit("python", {"entry_point": "no_such_module_xyz:main"}),
        "not-found": jobs.submit("python", {"entry_point": fn("missing")}),
        "bad-params": jobs.submit("python", {"entry_point": fn("work"), "epochs": 3}),
        "exit": jobs.submit("python", {"entry_point": fn("hard_exit"), "code": 3}),
        "killed": jobs.submit("python", {"entry_point": fn("self_kill")}),
        "bad-result": jobs.submit("python", {"entry_point": fn("bad_result")}),
    }
    assert done.status == "InProgress" and done.kind == "test-work"
    assert done.pid is not None and done.log_path is not None

    # Following the log reads the lines as they come and returns once the job has ended.
    lines = list(jobs.logs("done-1", follow=True))
    assert [line for line in lines if line.startswith("line ")] == [f"line {i}" for i in range(5)]
    assert any("Metric validation:auc is nan" in line for line in lines)
    assert jobs.describe("done-1").is_terminal

    info = jobs.wait("done-1", timeout=30)
    assert (info.status, info.secondary_status, info.failure_reason) == (
        "Completed",
        "Completed",
        "",
    )
    checkpoint = settings.home / "checkpoints" / "done-1" / "state.txt"
    assert info.result == {"n": 2500, "checkpoint": str(checkpoint)}
    assert checkpoint.read_text() == "2500"
    assert [t.status for t in info.transitions] == ["Starting", "Running", "Training", "Completed"]
    assert info.start_time is not None and info.end_time is not None
    assert info.creation_time <= info.start_time <= info.end_time

    # Every point arrives, in order, past the inline-flush size; NaN is skipped.
    loss = jobs.metrics("done-1", "train:loss")
    assert [p.step for p in loss] == list(range(2500))
    assert loss[-1].value == pytest.approx(1 / 2500)
    auc = jobs.metrics("done-1", "validation:auc")
    assert [(p.step, p.value) for p in auc] == [(0, 0.5), (7, 0.75)]
    final = {m["MetricName"]: m["Value"] for m in info.as_dict()["FinalMetricDataList"]}
    assert final == {"train:loss": pytest.approx(1 / 2500), "validation:auc": 0.75}

    described = info.as_dict()
    assert described["JobName"] == "done-1" and described["JobStatus"] == "Completed"
    assert described["LogUri"].startswith("file://")
    assert described["SecondaryStatusTransitions"][0]["Status"] == "Starting"
    assert "EndTime" in described["SecondaryStatusTransitions"][0]

    ended = {key: jobs.wait(job.name, timeout=30) for key, job in submitted.items()}
    assert all(i.status == "Failed" for i in ended.values()), {
        k: (i.status, i.failure_reason) for k, i in ended.items()
    }
    reasons = {key: i.failure_reason for key, i in ended.items()}
    assert reasons["client"] == "ClientError: The 'rows' parameter must be positive. Got -1."
    assert reasons["algorithm"] == "AlgorithmError: ZeroDivisionError: division by zero"
    assert reasons["no-module"].startswith("ClientError: The entry point 'no_such_module_xyz:main'")
    assert reasons["not-found"] == "ClientError: The table 'uci.wines' is not in the catalog."
    assert reasons["bad-params"].startswith("ClientError: The parameters ['epochs'] do not fit")
    assert reasons["exit"].startswith("AlgorithmError: the job's process exited with code 3")
    assert reasons["killed"].startswith("AlgorithmError: the job's process was killed by SIGKILL")
    assert reasons["bad-result"].startswith("AlgorithmError: The job's function returned a list")
    assert ended["algorithm"].secondary_status == "Failed"

    # The traceback is in the log, not in the reason.
    log = "\n".join(jobs.logs(ended["algorithm"].name))
    assert "Traceback (most recent call last)" in log and "about to divide" in log
    assert "Traceback" not in reasons["algorithm"]

    # Listing and filtering.
    assert len(jobs.list()) == 9
    assert [i.name for i in jobs.list(kind="test-work")] == ["done-1"]
    assert len(jobs.list(status="Failed")) == 8
    assert len(jobs.list(kind="python", status="Failed", limit=3)) == 3
    assert [i.name for i in jobs.list(name_contains="DONE")] == ["done-1"]
    assert jobs.list(name_contains="%") == []
    newest_first = [i.creation_time for i in jobs.list()]
    assert newest_first == sorted(newest_first, reverse=True)
    with pytest.raises(InvalidInput, match="Did you mean 'Completed'"):
        jobs.list(status="Complete")
    with pytest.raises(InvalidInput, match="limit"):
        jobs.list(limit=0)


def test_submit_and_wait_in_one_call(jobs: JobService) -> None:
    info = jobs.submit("python", {"entry_point": fn("work"), "n": 1}, wait=True)
    assert info.status == "Completed" and info.result["n"] == 1
    assert info.name.startswith("python-")
    # The log outlives the job; reading it without following just returns what is there.
    assert any("logged 1 points" in line for line in jobs.logs(info.name))
    assert isinstance(info.log_path, Path) and info.log_path.is_file()
