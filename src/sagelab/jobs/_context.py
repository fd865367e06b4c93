"""What a job function receives: :class:`JobContext`.

Metrics are buffered in memory and written in batches, so a job may log one
point per iteration: a background thread writes what has gathered every
``flush_seconds`` (0.25 s by default), a job that logs faster writes inline once
``flush_points`` (1000) are waiting, and whatever is left is written when the
job ends. Readers see points at most about half a second late.

Stopping works like ``KeyboardInterrupt``: when the job is asked to stop, the
runner raises :class:`JobStopped` in the job's main thread at the next Python
instruction (a ``time.sleep`` is cut short). Code that must not be cut in two
(writing a checkpoint) runs inside :meth:`JobContext.deferred_stop`. A job that
watches for stops itself sets ``ctx.interruptible = False`` and reads
:attr:`JobContext.stop_requested` (or calls :meth:`JobContext.check_stop`); what it
returns then is kept as the result of the ``Stopped`` job. Either way the job's
processes are killed if they have not ended within the executor's grace period.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.jobs._errors import JobStopped
from sagelab.jobs._records import PendingMetric, set_secondary_status, write_metrics
from sagelab.store import Store, utcnow

__all__ = ["JobContext"]


class JobContext:
    """A running job's view of itself.

    Args:
        job_name: the job's name.
        settings: the settings the job runs under.
        store: the metadata store the job's record lives in.
        job_id: the job's row id (metrics point at it).
        logger: where the job's messages go (by default a logger named after the job).
        flush_seconds: how often buffered metrics are written in the background.
        flush_points: how many buffered metrics make ``log_metric`` write at once.
    """

    def __init__(
        self,
        *,
        job_name: str,
        settings: Settings,
        store: Store,
        job_id: int,
        logger: logging.Logger | None = None,
        flush_seconds: float = 0.25,
        flush_points: int = 1000,
    ) -> None:
        self._name = job_name
        self._settings = settings
        self._store = store
        self._job_id = job_id
        self._logger = logger or logging.getLogger(f"sagelab.jobs.run.{job_name}")
        self._flush_seconds = flush_seconds
        self._flush_points = flush_points
        self._buffer: list[PendingMetric] = []
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._steps: dict[str, int] = {}
        self._skipped: set[str] = set()
        self._stop = threading.Event()
        self._stop_message = ""
        self._local = threading.local()
        self._armed = False
        self._interrupted = False
        self._interruptible = True
        self._closed = threading.Event()
        self._background: threading.Thread | None = None

    # ------------------------------------------------------------------ what the job reads
    @property
    def job_name(self) -> str:
        """The job's name."""
        return self._name

    @property
    def settings(self) -> Settings:
        """The settings the job runs under (home, metadata database, lake)."""
        return self._settings

    @property
    def logger(self) -> logging.Logger:
        """A logger whose messages go to the job's log."""
        return self._logger

    @property
    def checkpoint_dir(self) -> Path:
        """A folder of the job's own under the sagelab home, kept after the job ends."""
        path = self._settings.home / "checkpoints" / self._name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def interruptible(self) -> bool:
        """Whether a stop request interrupts the job's main thread (the default).

        Set it to False in a job that watches :attr:`stop_requested` itself.
        """
        return self._interruptible

    @interruptible.setter
    def interruptible(self, value: bool) -> None:
        self._interruptible = bool(value)
        if self._interruptible:
            self._interrupt_if_pending()

    @property
    def stop_requested(self) -> bool:
        """True once the job has been asked to stop."""
        return self._stop.is_set()

    # ------------------------------------------------------------------ what the job does
    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record one point of a metric (SageMaker-style names: ``train:loss``).

        ``step`` defaults to one more than the last step logged for ``name``
        (0 for the first). NaN and infinite values are skipped with a warning.

        Raises:
            ValueError: the name is empty or longer than 255 characters, or ``step`` is negative.
            TypeError: the value is not a number.
        """
        if not isinstance(name, str) or not name or len(name) > 255:
            raise ValueError(f"A metric name must be 1-255 characters; got {name!r}.")
        if isinstance(value, str | bytes):
            raise TypeError(f"The metric {name!r} must be a number; got {value!r}.")
        number = float(value)
        if step is None:
            step = self._steps.get(name, 0)
        elif isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"The step of metric {name!r} must be an integer >= 0; got {step!r}.")
        step = int(step)
        self._steps[name] = step + 1
        if not math.isfinite(number):
            if name not in self._skipped:
                self._skipped.add(name)
                self._logger.warning(
                    "Metric %s is %s at step %d; not recorded.", name, number, step
                )
            return
        with self.deferred_stop():
            with self._buffer_lock:
                self._buffer.append(PendingMetric(name, number, step, utcnow()))
                full = len(self._buffer) >= self._flush_points
            if full:
                self.flush_metrics()

    def flush_metrics(self) -> int:
        """Write the buffered metric points now; returns how many were written."""
        with self.deferred_stop(), self._flush_lock:
            with self._buffer_lock:
                points, self._buffer = self._buffer, []
            try:
                return write_metrics(self._store, self._job_id, points)
            except BaseException:
                with self._buffer_lock:
                    self._buffer[:0] = points
                raise

    def set_secondary_status(self, status: str, message: str = "") -> None:
        """Record a secondary-status transition (``Downloading``, ``Training``, ``Uploading``...).

        Ignored once the job is stopping.

        Raises:
            ValueError: the status is empty or longer than 64 characters.
        """
        if not isinstance(status, str) or not status or len(status) > 64:
            raise ValueError(f"A secondary status must be 1-64 characters; got {status!r}.")
        with self.deferred_stop():
            if set_secondary_status(self._store, self._name, status, message):
                self._logger.info("Status: %s%s", status, f" ({message})" if message else "")

    def check_stop(self) -> None:
        """Raise :class:`JobStopped` if the job has been asked to stop.

        Raises:
            JobStopped: a stop was requested.
        """
        if self._stop.is_set():
            if threading.current_thread() is threading.main_thread():
                self._interrupted = True
            raise JobStopped(self._stop_message or "The job was asked to stop.")

    @contextmanager
    def deferred_stop(self) -> Iterator[None]:
        """A block a stop request does not cut short; the stop takes effect when it ends.

        Raises:
            JobStopped: on leaving the outermost block, if a stop arrived meanwhile.
        """
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
        if depth == 0:
            self._interrupt_if_pending()

    # ------------------------------------------------------------------ for the runner
    def request_stop(self, message: str = "") -> None:
        """Ask the job to stop: interrupts the main thread now unless it is in a deferred block.

        Raises:
            JobStopped: when called on the main thread while the job function runs.
        """
        if not self._stop.is_set():
            self._stop_message = message
            self._stop.set()
            self._logger.warning(message or "The job was asked to stop.")
        self._interrupt_if_pending()

    def _interrupt_if_pending(self) -> None:
        if (
            self._stop.is_set()
            and self._armed
            and self._interruptible
            and not self._interrupted
            and getattr(self._local, "depth", 0) == 0
            and threading.current_thread() is threading.main_thread()
        ):
            self._interrupted = True
            raise JobStopped(self._stop_message or "The job was asked to stop.")

    @contextmanager
    def running(self, on_tick: Callable[[], Any] | None = None) -> Iterator[None]:
        """While the job function runs: stops may interrupt it, metrics flush in the background.

        ``on_tick`` is called from the background thread after each flush.
        """
        self._background = threading.Thread(
            target=self._flush_in_background, args=(on_tick,), name="sagelab-metrics", daemon=True
        )
        self._background.start()
        self._armed = True
        try:
            self._interrupt_if_pending()
            yield
        finally:
            self._armed = False

    def close(self) -> None:
        """Stop the background thread and write the metrics still buffered."""
        self._closed.set()
        if self._background is not None:
            self._background.join(timeout=10)
        self.flush_metrics()

    def _flush_in_background(self, on_tick: Callable[[], Any] | None) -> None:
        while not self._closed.wait(self._flush_seconds):
            try:
                self.flush_metrics()
            except Exception as exc:  # the database may come back; points stay buffered
                self._logger.warning("Could not write metrics yet (%s); will retry.", exc)
            if on_tick is not None:
                on_tick()
