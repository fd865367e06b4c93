"""The SDK's training names, in the SageMaker Python SDK's shape.

::

    import sagelab

    est = sagelab.Estimator("xgboost", hyperparameters={"num_round": 50, "objective": "binary:logistic"})
    est.fit({"train": "uci.cancer", "validation": "SELECT * FROM uci.cancer_holdout"}, target="label")
    est.model.predict(X)                            # a Model read back from the lake
    est.latest_training_job.describe()              # DescribeTrainingJob's shape
    est.training_job_analytics.dataframe()          # the metric time series
    est.model_data                                  # s3://artifacts/training/<job>/model/
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sagelab.algorithms import get_algorithm
from sagelab.errors import AlgorithmError, InvalidInput
from sagelab.training._model import Model
from sagelab.training._service import TrainingService

if TYPE_CHECKING:
    import pandas as pd

    from sagelab.jobs import JobInfo, JobService, MetricPoint
    from sagelab.lake import Catalog, Lake

__all__ = ["Estimator", "TrainingJob", "TrainingJobAnalytics"]


class _SessionLike(Protocol):
    """What the estimator needs of a :class:`sagelab.Session`."""

    @property
    def jobs(self) -> JobService: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def lake(self) -> Lake: ...


def _service(session: _SessionLike | None) -> TrainingService:
    if session is None:
        return TrainingService.from_settings()
    return TrainingService(session.jobs, session.catalog, session.lake)


class TrainingJobAnalytics:
    """A training job's metric time series (SageMaker's ``TrainingJobAnalytics``).

    Args:
        service: the training service.
        name: the job.
        metric_names: only these metrics (default: all).
    """

    def __init__(
        self, service: TrainingService, name: str, metric_names: list[str] | None = None
    ) -> None:
        self._service, self.name = service, name
        self._metric_names = metric_names

    @property
    def metric_names(self) -> list[str]:
        """The metrics the job recorded."""
        return sorted({p.name for p in self._service.jobs.metrics(self.name)})

    def points(self) -> list[MetricPoint]:
        """Every point, by metric name, in the order logged."""
        points = self._service.jobs.metrics(self.name)
        if self._metric_names is not None:
            points = [p for p in points if p.name in self._metric_names]
        return points

    def dataframe(self) -> pd.DataFrame:
        """Columns ``timestamp``, ``metric_name``, ``value``, ``step``."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"timestamp": p.timestamp, "metric_name": p.name, "value": p.value, "step": p.step}
                for p in self.points()
            ],
            columns=["timestamp", "metric_name", "value", "step"],
        )


class TrainingJob:
    """One training job (the SDK's ``estimator.latest_training_job``).

    Args:
        service: the training service.
        name: the job's name.
    """

    def __init__(self, service: TrainingService, name: str) -> None:
        self._service, self.name = service, name

    def __repr__(self) -> str:
        return f"TrainingJob({self.name!r})"

    @property
    def job_name(self) -> str:
        return self.name

    def info(self) -> JobInfo:
        """The job's snapshot.

        Raises:
            NotFound: the job no longer exists.
        """
        return self._service.describe(self.name)

    def describe(self) -> dict[str, Any]:
        """The job in DescribeTrainingJob's shape (status, parameters, result, final metrics)."""
        return self.info().as_dict()

    @property
    def status(self) -> str:
        return self.info().status

    def wait(self, logs: bool = False) -> JobInfo:
        """Block until the job ends, printing its log lines with ``logs``.

        Raises:
            InvalidInput: the job failed with ``ClientError: ...`` (bad input).
            AlgorithmError: the job failed otherwise.
        """
        if logs:
            for line in self._service.jobs.logs(self.name, follow=True):
                print(line, file=sys.stdout, flush=True)
        info = self._service.jobs.wait(self.name)
        if info.status == "Failed":
            reason = info.failure_reason
            if reason.startswith("ClientError:"):
                raise InvalidInput(
                    f"Training job {self.name} failed: {reason.removeprefix('ClientError:').strip()}"
                )
            raise AlgorithmError(f"Training job {self.name} failed: {reason}")
        return info

    def stop(self) -> JobInfo:
        """Ask the job to stop.

        Raises:
            Conflict: it has already ended.
        """
        return self._service.jobs.stop(self.name)

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The job's log lines."""
        return self._service.jobs.logs(self.name, follow=follow)

    def metrics(self, metric_name: str | None = None) -> list[MetricPoint]:
        """The job's metric points (one metric's with ``metric_name``)."""
        return self._service.jobs.metrics(self.name, metric_name)

    def final_metrics(self) -> dict[str, float]:
        """The final model's metrics by their declared names (``validation:auc``, ``test:rmse``)."""
        return dict(self.info().result.get("FinalMetrics") or {})

    def analytics(self, metric_names: list[str] | None = None) -> TrainingJobAnalytics:
        """The job's metric time series."""
        return TrainingJobAnalytics(self._service, self.name, metric_names)

    @property
    def model_data(self) -> str | None:
        """Where the job's model lives (``s3://artifacts/training/<job>/model/``)."""
        artifacts = self.info().result.get("ModelArtifacts") or {}
        return artifacts.get("S3ModelArtifacts")

    def model(self) -> Model:
        """The job's model, read back from the lake.

        Raises:
            NotFound: the job has no finished model.
        """
        return self._service.model(self.name)


class Estimator:
    """Train a built-in algorithm as a job: SageMaker's ``Estimator`` for sagelab.

    Hyperparameters are checked when the estimator is made, so a mistake shows before
    any data is read.

    Args:
        algorithm: a built-in algorithm (``xgboost``, ``lightgbm``, ``linear-learner``...).
        hyperparameters: by SageMaker's names (``{"num_round": 100, "eta": 0.1}``).
        target: the label column; without it the label is the first column.
        content_type: the channels' content type (default: inferred per SOURCE).
        holdout: share of train held out for validation when no validation is given.
        split_by: hold out the latest rows by this column instead (time-ordered).
        cv: k-fold cross-validation before the final fit.
        seed: seeds the algorithm, the split and the folds.
        max_run: stop a job after this many seconds (SageMaker's ``max_run``).
        checkpoint_s3_uri: checkpoint location in the lake (default: per job).
        checkpoint_every: checkpoint every this many iterations (0: never).
        base_job_name: prefix of generated job names.
        session: a :class:`sagelab.Session` (default: one from the environment).

    Raises:
        InvalidInput: unknown algorithm or bad hyperparameters.
    """

    def __init__(
        self,
        algorithm: str,
        hyperparameters: Mapping[str, Any] | None = None,
        *,
        target: str | None = None,
        content_type: str | None = None,
        holdout: float = 0.2,
        split_by: str | None = None,
        cv: int | None = None,
        seed: int = 0,
        max_run: int | None = None,
        checkpoint_s3_uri: str | None = None,
        checkpoint_every: int = 10,
        base_job_name: str | None = None,
        session: _SessionLike | None = None,
    ) -> None:
        self.algorithm = algorithm
        self._hyperparameters = dict(hyperparameters or {})
        get_algorithm(algorithm)(self._hyperparameters, seed=seed)
        self.target, self.content_type = target, content_type
        self.holdout, self.split_by, self.cv, self.seed = holdout, split_by, cv, seed
        self.max_run = max_run
        self.checkpoint_s3_uri, self.checkpoint_every = checkpoint_s3_uri, checkpoint_every
        self.base_job_name = base_job_name
        self._service = _service(session)
        self._job: TrainingJob | None = None
        self._model: Model | None = None

    def __repr__(self) -> str:
        job = self._job.name if self._job is not None else None
        return f"Estimator({self.algorithm!r}, latest_training_job={job!r})"

    # ------------------------------------------------------------------ hyperparameters
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters given (SageMaker's ``Estimator.hyperparameters()``)."""
        return dict(self._hyperparameters)

    def set_hyperparameters(self, **hyperparameters: Any) -> None:
        """Set hyperparameters, checked at once.

        Raises:
            HyperparameterError: a bad value (every problem listed).
        """
        merged = {**self._hyperparameters, **hyperparameters}
        get_algorithm(self.algorithm)(merged, seed=self.seed)
        self._hyperparameters = merged

    # ------------------------------------------------------------------ training
    def fit(
        self,
        inputs: Any,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
    ) -> None:
        """Start a training job on ``inputs``.

        Args:
            inputs: a SOURCE (or a pandas DataFrame / PyArrow table) for the train
                channel, or a dict ``{"train": ..., "validation": ..., "test": ...}``.
                Tables are written to the lake first, so the job's process can read them.
            wait: block until the job ends.
            logs: while waiting, print the job's log.
            job_name: the job's name (default: generated).

        Raises:
            InvalidInput: a bad request, or (waiting) the job failed on bad input.
            AlgorithmError: (waiting) the job failed otherwise.
            Conflict: a job with that name exists.
        """
        channels = inputs if isinstance(inputs, Mapping) else {"train": inputs}
        staged = {
            channel: value if isinstance(value, str) else self._service.stage_input(value, channel)
            for channel, value in channels.items()
        }
        if job_name is None and self.base_job_name:
            import secrets

            from sagelab.store import utcnow

            stamp = utcnow().strftime("%Y%m%d-%H%M%S")
            job_name = f"{self.base_job_name[:40]}-{stamp}-{secrets.token_hex(2)}"
        info = self._service.submit(
            self.algorithm,
            staged,
            hyperparameters=self._hyperparameters,
            target=self.target,
            content_type=self.content_type,
            holdout=self.holdout,
            split_by=self.split_by,
            cv=self.cv,
            seed=self.seed,
            name=job_name,
            max_runtime_seconds=self.max_run,
            checkpoint_uri=self.checkpoint_s3_uri,
            checkpoint_every=self.checkpoint_every,
        )
        self._job = TrainingJob(self._service, info.name)
        self._model = None
        if wait:
            self._job.wait(logs=logs)

    @classmethod
    def attach(cls, training_job_name: str, session: _SessionLike | None = None) -> Estimator:
        """An estimator for an existing training job (SageMaker's ``Estimator.attach``).

        Raises:
            NotFound: no such job.
            InvalidInput: not a training job.
        """
        service = _service(session)
        params = service.describe(training_job_name).parameters
        est = cls(
            params["algorithm"],
            params.get("hyperparameters"),
            target=params.get("target"),
            content_type=params.get("content_type"),
            holdout=params.get("holdout", 0.2),
            split_by=params.get("split_by"),
            cv=params.get("cv"),
            seed=params.get("seed", 0),
            checkpoint_s3_uri=params.get("checkpoint_uri"),
            checkpoint_every=params.get("checkpoint_every", 10),
            session=session,
        )
        est._job = TrainingJob(service, training_job_name)
        return est

    # ------------------------------------------------------------------ results
    def _latest(self) -> TrainingJob:
        if self._job is None:
            raise InvalidInput("This estimator has not trained yet: call fit() first.")
        return self._job

    @property
    def latest_training_job(self) -> TrainingJob | None:
        """The job of the last :meth:`fit`, or None before the first."""
        return self._job

    @property
    def model_data(self) -> str | None:
        """Where the latest job's model lives in the lake.

        Raises:
            InvalidInput: the estimator has not trained yet.
        """
        return self._latest().model_data

    @property
    def model(self) -> Model:
        """The latest job's model, read back from the lake (cached).

        Raises:
            InvalidInput: the estimator has not trained yet.
            NotFound: the job has no finished model.
        """
        if self._model is None or self._model.job_name != self._latest().name:
            self._model = self._latest().model()
        return self._model

    def create_model(self) -> Model:
        """The latest job's model (SageMaker's ``create_model``)."""
        return self.model

    @property
    def training_job_analytics(self) -> TrainingJobAnalytics:
        """The latest job's metric time series (``.dataframe()``)."""
        return self._latest().analytics()

    def metrics(self) -> dict[str, float]:
        """The latest job's final metrics by their declared names."""
        return self._latest().final_metrics()
