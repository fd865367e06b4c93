"""The process a job runs in: ``python -m sagelab.jobs._runner JOB_NAME [--stop-grace SECONDS]``.

The local executor starts this module in a session of its own, with stdout and
stderr going to the job's log file. It becomes two processes:

* the **supervisor** (the process whose pid the job records) marks the job
  started, forks the worker and watches it. It passes on stop requests (a
  SIGTERM, or the record's stop flag for a stop that could not send one),
  enforces the max runtime, kills a worker that has not stopped within the grace
  period, and records a final status when the worker dies without one (a crash,
  ``os._exit``, the kernel's OOM killer);
* the **worker** imports the job's function, runs it and records how it ended:
  ``Completed`` with its result, ``Stopped``, or ``Failed`` with
  ``ClientError: ...`` for an error that is the caller's (a sagelab error with a
  4xx status: :class:`~sagelab.errors.InvalidInput`, ``NotFound``, ``Conflict``)
  or ``AlgorithmError: ...`` for any other exception (the traceback goes to the log).

:func:`run_worker` is the worker's part alone, for executors that supervise by
other means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime
from pathlib import PurePath
from types import FrameType
from typing import Any

import psutil

from sagelab._plugins import check_call, load_target
from sagelab.config import Settings
from sagelab.errors import AlgorithmError, Conflict, InvalidInput, SagelabError, http_status
from sagelab.jobs._context import JobContext
from sagelab.jobs._errors import JobStopped
from sagelab.jobs._executors import DEFAULT_STOP_GRACE_SECONDS
from sagelab.jobs._info import COMPLETED, FAILED, STOPPED
from sagelab.jobs._records import (
    MAX_RUNTIME_EXCEEDED,
    StartedJob,
    finish,
    mark_started,
    request_stop,
    stop_flag,
)
from sagelab.store import Store

__all__ = ["main", "run_worker"]

_TICK = 0.1
_STOP_POLL_SECONDS = 1.0
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Flag:
    """Set by a signal handler, read by the loop."""

    def __init__(self) -> None:
        self.set = False

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.set = True


def _job_logger() -> logging.Logger:
    # The job's stderr is its log file; user code that logs through ``logging`` lands there too.
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT, stream=sys.stderr, force=True)
    return logging.getLogger("sagelab.job")


# --------------------------------------------------------------------------- worker
def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars, 0-d arrays and tensors
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _as_result(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlgorithmError(
            f"The job's function returned a {type(value).__name__}; it must return a dict "
            "(the job's result) or None."
        )
    try:
        result: dict[str, Any] = json.loads(json.dumps(value, default=_jsonable, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise AlgorithmError(f"The job's result cannot be stored as JSON: {exc}.") from exc
    return result


def _algorithm_reason(exc: BaseException) -> str:
    text = str(exc)
    if not isinstance(exc, AlgorithmError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"AlgorithmError: {text}"


def run_worker(
    settings: Settings,
    store: Store,
    job: StartedJob,
    logger: logging.Logger,
    *,
    supervisor_pid: int | None = None,
    stop_pending: Callable[[], bool] | None = None,
) -> int:
    """Run a started job's function in this process and record how it ended.

    Installs a SIGTERM handler that stops the job; ``stop_pending`` tells whether a
    stop arrived before it was installed. With ``supervisor_pid``, the job fails
    and this process exits if that process goes away.

    Returns:
        The exit code: 0 unless the job failed.
    """
    ctx = JobContext(
        job_name=job.name, settings=settings, store=store, job_id=job.id, logger=logger
    )

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        ctx.request_stop("Stop requested (SIGTERM); stopping the job.")

    def on_tick() -> None:
        if supervisor_pid is not None and os.getppid() != supervisor_pid:
            reason = (
                f"AlgorithmError: the job's supervisor process (pid {supervisor_pid}) ended "
                "unexpectedly; the job was abandoned."
            )
            finish(store, job.name, FAILED, reason=reason)
            logger.error(reason)
            os._exit(1)

    signal.signal(signal.SIGTERM, on_sigterm)
    status, reason, result = COMPLETED, "", None
    try:
        try:
            fn = load_target(job.target)
        except InvalidInput as exc:
            raise AlgorithmError(f"The job's function cannot be loaded: {exc}") from exc
        check_call(fn, (ctx,), job.parameters, job.target)
        with ctx.running(on_tick):
            if stop_pending is not None and stop_pending():
                ctx.request_stop("Stop requested before the job began.")
            value = fn(ctx, **job.parameters)
        result = _as_result(value)
        if ctx.stop_requested:  # it watched for the stop itself and ended early
            status = STOPPED
    except JobStopped:
        status = STOPPED
    except SagelabError as exc:
        traceback.print_exc()
        # The caller's fault (a 4xx: bad input, a missing table, a taken name) or the work's.
        kind = "ClientError" if http_status(exc) < 500 else "AlgorithmError"
        status, reason = FAILED, f"{kind}: {exc}"
    except SystemExit as exc:
        if exc.code not in (0, None):
            status, reason = FAILED, f"AlgorithmError: the job called sys.exit({exc.code!r})."
    except BaseException as exc:
        traceback.print_exc()
        status, reason = FAILED, _algorithm_reason(exc)
    try:
        ctx.close()
    except Exception as exc:
        logger.error("Some metrics could not be written: %s", exc)
    finish(store, job.name, status, reason=reason, result=result)
    if reason:
        logger.error("Job failed: %s", reason)
    else:
        logger.info("Job %s.", status.lower())
    return 1 if status == FAILED else 0


# --------------------------------------------------------------------------- supervisor
class _Supervisor:
    def __init__(
        self,
        store: Store,
        job: StartedJob,
        worker: int,
        grace: float,
        stop: _Flag,
        logger: logging.Logger,
    ) -> None:
        self.store, self.job, self.worker, self.grace = store, job, worker, grace
        self.stop, self.logger = stop, logger

    def run(self) -> int:
        started = time.monotonic()
        limit = self.job.max_runtime_seconds
        deadline = started + limit if limit else None
        next_poll = started + _STOP_POLL_SECONDS
        term_at: float | None = None
        killed = False
        while True:
            pid, status = os.waitpid(self.worker, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if term_at is None:
                if deadline is not None and now >= deadline:
                    deadline = None
                    if self._max_runtime_exceeded(limit or 0):
                        term_at = now
                elif self.stop.set:
                    term_at = now
                elif now >= next_poll:
                    next_poll = now + _STOP_POLL_SECONDS
                    if self._stop_flag():
                        self.logger.warning("Stop requested; stopping the job.")
                        term_at = now
                if term_at is not None:
                    self._signal_group(signal.SIGTERM)
            elif not killed and now - term_at >= self.grace:
                self.logger.warning(
                    "The job did not stop within %.0f s of the request; killing it.", self.grace
                )
                self._kill_worker_tree()
                killed = True
            time.sleep(_TICK)
        code = os.waitstatus_to_exitcode(status)
        self._settle(code)
        self._sweep()
        return 0 if code == 0 else 1

    def _max_runtime_exceeded(self, limit: int) -> bool:
        message = f"The job ran longer than its max runtime of {limit} s."
        try:
            request_stop(self.store, self.job.name, secondary=MAX_RUNTIME_EXCEEDED, message=message)
        except Conflict:  # it ended on its own meanwhile
            return False
        self.logger.warning("%s Stopping it.", message)
        return True

    def _stop_flag(self) -> bool:
        try:
            return stop_flag(self.store, self.job.name)
        except Exception as exc:  # a database hiccup must not kill the supervisor
            self.logger.warning("Could not read the job's stop flag: %s", exc)
            return False

    def _signal_group(self, sig: int) -> None:
        # Like a stop from outside, the whole group hears it; our own handler only notes it.
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), sig)
        else:
            os.kill(self.worker, sig)

    def _kill_worker_tree(self) -> None:
        try:
            procs = [psutil.Process(self.worker)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()

    def _settle(self, code: int) -> None:
        if code < 0:
            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = f"signal {-code}"
            reason = (
                f"AlgorithmError: the job's process was killed by {signame} ({-code}); it may "
                "have run out of memory or crashed."
            )
        else:
            reason = (
                f"AlgorithmError: the job's process exited with code {code} without reporting "
                "a status."
            )
        if finish(self.store, self.job.name, FAILED, reason=reason):
            self.logger.error("Job ended without reporting a status: %s", reason)

    def _sweep(self) -> None:
        """End what the job left running in its process group."""
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        if os.getpgrp() == os.getpid():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(os.getpgrp(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Run the named job (the supervisor's entry point)."""
    stop = _Flag()
    signal.signal(signal.SIGTERM, stop.handler)
    parser = argparse.ArgumentParser(prog="python -m sagelab.jobs._runner")
    parser.add_argument("job_name")
    parser.add_argument("--stop-grace", type=float, default=DEFAULT_STOP_GRACE_SECONDS)
    args = parser.parse_args(argv)
    logger = _job_logger()
    settings = Settings()
    store = Store(settings.db_url, migrate=False)
    job = mark_started(store, args.job_name)
    if job is None:
        logger.info("Job %s is not waiting to run; nothing to do.", args.job_name)
        return 0
    logger.info("Job %s started (supervisor pid %d).", job.name, os.getpid())
    # A forked child must not share the parent's pooled database connections.
    store.dispose()
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    worker = os.fork()
    if worker == 0:  # the worker
        code = 1
        try:
            code = run_worker(
                settings,
                Store(settings.db_url, migrate=False),
                job,
                logger,
                supervisor_pid=supervisor,
                stop_pending=lambda: stop.set,
            )
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return _Supervisor(store, job, worker, args.stop_grace, stop, logger).run()


if __name__ == "__main__":
    sys.exit(main())
