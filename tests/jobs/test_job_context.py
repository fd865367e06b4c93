"""JobContext on its own, in this process: metric batching, stop delivery, validation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sagelab.config import Settings
from sagelab.errors import InvalidInput
from sagelab.jobs import JobContext, JobService, JobStopped
from sagelab.jobs._python import run_python
from sagelab.store import Job, Store


@pytest.fixture
def ctx(store: Store, settings: Settings) -> Iterator[JobContext]:
    with store.session() as s:
        row = Job(name="ctx-job", kind="python", target="x:y", host="elsewhere")
        s.add(row)
        s.flush()
        job_id = row.id
    context = JobContext(
        job_name="ctx-job",
        settings=settings,
        store=store,
        job_id=job_id,
        flush_seconds=60,
        flush_points=3,
    )
    yield context
    context.close()


def test_metrics_are_written_in_batches(ctx: JobContext, store: Store, settings: Settings) -> None:
    jobs = JobService(store, settings, recover=False)
    for i in range(7):
        ctx.log_metric("train:loss", i)
    assert len(jobs.metrics("ctx-job")) == 6  # two full batches went out inline
    ctx.log_metric("train:loss", float("inf"))
    assert ctx.flush_metrics() == 1
    points = jobs.metrics("ctx-job", "train:loss")
    assert [p.step for p in points] == list(range(7))
    ctx.log_metric("train:loss", 9, step=100)
    ctx.log_metric("train:loss", 10)
    ctx.close()
    assert [p.step for p in jobs.metrics("ctx-job")][-2:] == [100, 101]


def test_metric_and_status_validation(ctx: JobContext) -> None:
    with pytest.raises(ValueError, match="metric name"):
        ctx.log_metric("", 1.0)
    with pytest.raises(ValueError, match="metric name"):
        ctx.log_metric("x" * 256, 1.0)
    with pytest.raises(TypeError, match="must be a number"):
        ctx.log_metric("loss", "0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step"):
        ctx.log_metric("loss", 1.0, step=-1)
    with pytest.raises(ValueError, match="secondary status"):
        ctx.set_secondary_status("")
    assert ctx.checkpoint_dir.is_dir()
    with pytest.raises(InvalidInput, match="needs the parameter 'entry_point'"):
        run_python(ctx)


def test_a_deferred_block_holds_the_stop_until_it_ends(ctx: JobContext) -> None:
    steps: list[str] = []
    with pytest.raises(JobStopped, match="halt"), ctx.running():
        with ctx.deferred_stop():
            ctx.request_stop("halt")
            assert ctx.stop_requested
            steps.append("end of block")
        steps.append("after the block")
    assert steps == ["end of block"]


def test_stop_request_interrupts_at_once(ctx: JobContext) -> None:
    with pytest.raises(JobStopped, match="halt"), ctx.running():
        ctx.request_stop("halt")
    with pytest.raises(JobStopped):
        ctx.check_stop()


def test_a_watching_job_is_not_interrupted(ctx: JobContext) -> None:
    with ctx.running():
        ctx.interruptible = False
        ctx.request_stop("halt")
        assert ctx.stop_requested
        # Another thread asking does not interrupt the main thread either.
        threading.Thread(target=ctx.request_stop).start()
    with pytest.raises(JobStopped):
        ctx.check_stop()
