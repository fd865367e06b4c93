"""The training callbacks a job hands to an algorithm: its metrics, its stop requests, its log."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagelab.jobs import JobContext

__all__ = ["JobCallbacks", "QuietCallbacks"]


class JobCallbacks:
    """:class:`~sagelab.algorithms.TrainingCallbacks` over a running job.

    Metric points go to the job's time series as the algorithm steps them: an
    algorithm resumed from a checkpoint counts on from it, so round 120 of a resumed
    run is step 120, not 0.

    Args:
        ctx: the job's context.
    """

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self.logger: logging.Logger = ctx.logger

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record one point (see :meth:`sagelab.jobs.JobContext.log_metric`).

        Raises:
            ValueError: a bad name or step.
        """
        self._ctx.log_metric(name, value, step)

    def check_stop(self) -> None:
        """Raise if the job was asked to stop.

        Raises:
            JobStopped: a stop was requested.
        """
        self._ctx.check_stop()

    def deferred_stop(self) -> AbstractContextManager[None]:
        """A block a stop does not cut in two (copying a checkpoint to the lake)."""
        return self._ctx.deferred_stop()


class QuietCallbacks:
    """Callbacks for the models of cross-validation folds: stops work, metrics are dropped.

    The folds' per-iteration series would mix with the final model's under the same
    names; each fold's final metrics are recorded instead.
    """

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self.logger: logging.Logger = ctx.logger

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Drop the point."""

    def check_stop(self) -> None:
        """Raise if the job was asked to stop.

        Raises:
            JobStopped: a stop was requested.
        """
        self._ctx.check_stop()
