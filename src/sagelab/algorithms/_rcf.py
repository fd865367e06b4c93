"""``random-cut-forest``: SageMaker's anomaly detector, the robust random cut forest.

Training streams the train channel once, keeping a reservoir sample of
``num_samples_per_tree`` rows for each of ``num_trees`` trees (memory does not grow
with the data), builds the trees on those samples, then streams the channel again
to score it: the threshold above which a row counts as an anomaly is SageMaker's,
the mean of the training scores plus three standard deviations. Labels a channel
carries are ignored in training; on a labelled validation or test channel the
rows above the threshold are compared with the labels (``test:f1``...). The training
scores' mean and spread are taken over all train rows, or over a uniform sample of
about 20,000 of them when there are more.

A row's score is its expected collusive displacement (Guha et al., 2016), averaged
over the trees: higher is more anomalous. The forest itself (building, scoring,
reservoirs) lives in :mod:`sagelab.algorithms._rcf_forest`, written by hand in NumPy
because no maintained Python library implements it; with Numba installed (the ``fast``
extra) scoring runs in a compiled kernel, :mod:`sagelab.algorithms._rcf_kernel`, several
times faster and with the same scores.

The artifact is three ``.npy`` arrays (the nodes, and the lower and upper corners of
their bounding boxes), saved without pickles, plus ``sagelab-model.json`` with the
threshold.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sagelab.algorithms import _metrics as M
from sagelab.algorithms._base import (
    Algorithm,
    Capabilities,
    Checkpoint,
    DataSource,
    MetricDefinition,
    Prediction,
    TrainingCallbacks,
)
from sagelab.algorithms._common import (
    all_cores,
    as_features,
    check_thread_count,
    class_labels,
    declare_metrics,
    load_npy,
    read_metadata,
    restore,
    save_npy,
    write_metadata,
)
from sagelab.algorithms._hyperparameters import Hyperparameter
from sagelab.algorithms._rcf_forest import Forest, Reservoirs, build_forest
from sagelab.errors import InvalidInput

__all__ = ["RandomCutForest"]

NODES_FILE = "nodes.npy"
LOWER_FILE = "lower.npy"
UPPER_FILE = "upper.npy"
_FILES = (NODES_FILE, LOWER_FILE, UPPER_FILE)

#: Rows read at a time: each one draws a number per tree for the reservoirs.
_BATCH_ROWS = 4096
#: SageMaker's threshold: scores above the training mean plus this many deviations.
_THRESHOLD_SIGMAS = 3.0
#: The threshold needs only the mean and spread of the training scores: they are
#: computed on a uniform sample of about this many train rows (all of them when fewer).
_THRESHOLD_ROWS = 20_000

_HYPERPARAMETERS = (
    Hyperparameter(
        "feature_dim",
        "int",
        None,
        low=1,
        help="Features per row (default: those of the train channel); checked against the data.",
        tunable=False,
    ),
    Hyperparameter(
        "num_trees",
        "int",
        100,
        low=50,
        high=1000,
        help="Trees in the forest; more trees give steadier scores and cost more time.",
    ),
    Hyperparameter(
        "num_samples_per_tree",
        "int",
        256,
        low=1,
        high=2048,
        help="Rows sampled (reservoir sampling) to build each tree; about 1/(share of "
        "anomalies expected).",
    ),
)

_METRICS = {
    "f1": "F1 score of the rows above the score threshold against the labels",
    "precision": "Precision of the rows above the score threshold against the labels",
    "recall": "Recall of the rows above the score threshold against the labels",
}


class RandomCutForest(Algorithm):
    """SageMaker's random cut forest: an anomaly score per row, higher for rarer rows.

    Trains from ``train.batches(...)`` only (``streams_data``), in two passes: reservoir
    sampling for the trees, then the training scores for the threshold. Predicts the
    score (``values``) and whether it is above the threshold (``labels``, 1 for an
    anomaly). Emits no training metrics, like SageMaker; on a labelled validation or
    test channel, ``f1``, ``precision`` and ``recall`` of the thresholded scores.

    Threads: scoring uses every core unless :meth:`set_prediction_threads` says otherwise
    (in training too). Speed: install the ``fast`` extra (Numba) for the compiled scoring;
    a loaded model has it ready, so the first request does not wait for it.
    """

    name: ClassVar[str] = "random-cut-forest"
    problem_types: ClassVar[tuple[str, ...]] = ("anomaly_detection",)
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = _HYPERPARAMETERS
    content_types: ClassVar[tuple[str, ...]] = ("text/csv", "application/x-parquet")
    metrics: ClassVar[tuple[MetricDefinition, ...]] = declare_metrics(
        dict.fromkeys(_METRICS, "Maximize"), _METRICS, channels=("validation", "test")
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        sparse_input=False, needs_target=False, streams_data=True
    )
    help: ClassVar[str] = (
        "Robust random cut forest (Guha et al., 2016): an anomaly score per row, the "
        "expected collusive displacement of the row in trees built on reservoir samples."
    )
    example_hyperparameters: ClassVar[dict[str, dict[str, Any]]] = {
        "anomaly_detection": {"num_trees": 50, "num_samples_per_tree": 64}
    }

    def __init__(self, hyperparameters: Mapping[str, Any] | None = None, *, seed: int = 0) -> None:
        super().__init__(hyperparameters, seed=seed)
        self._forest: Forest | None = None
        self._threshold = math.inf
        self._score_mean = 0.0
        self._score_std = 0.0
        self._threads = all_cores()

    # ------------------------------------------------------------------ reading
    def _read(
        self, source: DataSource, what: str, callbacks: TrainingCallbacks
    ) -> Iterator[tuple[np.ndarray, Any]]:
        """Checked (features, labels as given) batches of a channel, in order."""
        for batch in source.batches(_BATCH_ROWS):
            callbacks.check_stop()
            X = as_features(batch.X, algorithm=self.name, sparse_ok=False, allow_missing=False)
            if not self.feature_names:
                self._start(X, source, what)
            self.check_features(X)
            yield X, batch.y

    def _start(self, X: np.ndarray, source: DataSource, what: str) -> None:
        expected = self.params["feature_dim"]
        if expected is not None and expected != X.shape[1]:
            raise InvalidInput(
                f"The 'feature_dim' hyperparameter of {self.name} is {expected}, but the "
                f"{what} channel has {X.shape[1]} features. Give feature_dim={X.shape[1]} "
                "or leave it out."
            )
        names = list(getattr(source, "feature_names", None) or [])
        self.feature_names = names or [f"f{i}" for i in range(X.shape[1])]

    # ------------------------------------------------------------------ training
    def fit(
        self,
        train: DataSource,
        validation: DataSource | None,
        callbacks: TrainingCallbacks,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Sample the train channel into reservoirs, build the trees, set the threshold.

        Raises:
            InvalidInput: no rows, features that are not finite numbers, another number
                of features than ``feature_dim`` or than the train channel's.
        """
        self.feature_names, self._forest = [], None
        rng = np.random.default_rng(self.seed)
        trees, size = self.params["num_trees"], self.params["num_samples_per_tree"]
        reservoirs: Reservoirs | None = None
        for X, _ in self._read(train, "train", callbacks):
            if reservoirs is None:
                reservoirs = Reservoirs(trees, size, X.shape[1], rng)
            reservoirs.add(X)
        if reservoirs is None:
            raise InvalidInput(f"The train channel of {self.name} has no rows.")
        callbacks.check_stop()
        self._forest = build_forest(reservoirs.samples(), rng)
        callbacks.logger.info(
            "%s: %d trees on samples of %d of the %d train rows.",
            self.name,
            trees,
            min(size, reservoirs.seen),
            reservoirs.seen,
        )
        # Chan et al.'s pairwise update: the mean and variance of the training scores
        # from batches, without keeping them.
        keep = min(1.0, _THRESHOLD_ROWS / reservoirs.seen)
        picker = np.random.default_rng([self.seed, 1])
        rows, mean, m2 = 0, 0.0, 0.0
        for X, _ in self._read(train, "train", callbacks):
            if keep < 1.0:
                X = X[picker.random(X.shape[0]) < keep]
                if X.shape[0] == 0:
                    continue
            scores = self._forest.score(X, self._threads)
            n, batch_mean = scores.size, float(scores.mean())
            delta = batch_mean - mean
            total = rows + n
            mean += delta * n / total
            m2 += float(((scores - batch_mean) ** 2).sum()) + delta * delta * rows * n / total
            rows = total
        self._score_mean, self._score_std = mean, math.sqrt(m2 / rows)
        self._threshold = mean + _THRESHOLD_SIGMAS * self._score_std
        callbacks.logger.info(
            "%s: training scores %.4g ± %.4g; rows scoring above %.4g count as anomalies.",
            self.name,
            mean,
            self._score_std,
            self._threshold,
        )
        if validation is not None:
            for name, value in self.evaluate(validation, "validation", callbacks=callbacks).items():
                callbacks.log_metric(name, value, step=0)

    # ------------------------------------------------------------------ prediction
    def _model(self) -> Forest:
        if self._forest is None:
            raise InvalidInput(
                f"This {self.name} model is not trained: call fit() or load() first."
            )
        return self._forest

    def set_prediction_threads(self, threads: int) -> None:
        """Score on at most ``threads`` threads.

        Raises:
            InvalidInput: not an integer >= 1.
        """
        self._threads = check_thread_count(threads, self.name)

    def predict(self, X: Any) -> Prediction:
        """The anomaly score of each row (``values``) and 1 where it is above the threshold.

        Raises:
            InvalidInput: features that are not finite numbers, or a different number of them.
        """
        forest = self._model()
        X = as_features(X, algorithm=self.name, sparse_ok=False, allow_missing=False)
        self.check_features(X)
        scores = forest.score(X, self._threads)
        return Prediction(values=scores, labels=(scores > self._threshold).astype(np.int64))

    def evaluate(
        self,
        data: DataSource,
        channel: str = "test",
        *,
        callbacks: TrainingCallbacks | None = None,
    ) -> dict[str, float]:
        """``f1``, ``precision`` and ``recall`` of the thresholded scores against the
        channel's labels (1 for an anomaly); nothing for a channel without labels.

        Raises:
            InvalidInput: features that do not fit the model, or labels other than 0 and 1.
        """
        forest = self._model()
        labels, flags, offset = [], [], 0
        for X, y in self._read(data, channel, callbacks or _Quiet()):
            if y is not None:
                labels.append(
                    class_labels(
                        y,
                        algorithm=self.name,
                        problem_type="binary_classifier",
                        what=channel,
                        offset=offset,
                    )
                )
                flags.append(forest.score(X, self._threads) > self._threshold)
            offset += X.shape[0]
        if not labels:
            return {}
        y_all, predicted = np.concatenate(labels), np.concatenate(flags).astype(np.int64)
        precision, recall = M.precision_recall(y_all, predicted)
        out = {"f1": M.f_beta(precision, recall, 1.0), "precision": precision, "recall": recall}
        return {f"{channel}:{name}": value for name, value in out.items()}

    @property
    def threshold(self) -> float:
        """The score above which a row counts as an anomaly (mean + 3 std of training scores)."""
        self._model()
        return self._threshold

    # ------------------------------------------------------------------ artifacts
    def save(self, directory: Path) -> None:
        """Write the forest's arrays (``.npy``, no pickles) and ``sagelab-model.json``.

        Raises:
            InvalidInput: the model is not trained.
        """
        forest = self._model()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in zip(_FILES, (forest.nodes, forest.lower, forest.upper), strict=True):
            save_npy(directory / name, array)
        write_metadata(
            directory,
            self,
            problem_type=self.problem_type(),
            num_classes=None,
            files=list(_FILES),
            versions={},
            extra={
                "score_threshold": self._threshold,
                "score_mean": self._score_mean,
                "score_std": self._score_std,
            },
        )

    @classmethod
    def load(cls, directory: Path) -> RandomCutForest:
        """Read a model written by :meth:`save`; arrays load with ``allow_pickle=False``.

        Raises:
            NotFound: no model in ``directory``.
            InvalidInput: the files are not a random-cut-forest model saved by sagelab.
        """
        directory = Path(directory)
        meta = read_metadata(directory, cls.name, list(_FILES))
        instance = restore(cls, meta)
        numbers = [meta.get(k) for k in ("score_threshold", "score_mean", "score_std")]
        finite = [float(v) for v in numbers if isinstance(v, float | int) and math.isfinite(v)]
        if len(finite) != len(numbers):
            raise InvalidInput(
                f"The score threshold in {str(directory)!r} is missing or not a number; "
                "save the model again."
            )
        forest = Forest(*(load_npy(directory / name) for name in _FILES))
        forest.check(instance.params["num_trees"], len(instance.feature_names))
        forest.prepare()
        instance._forest = forest
        instance._threshold, instance._score_mean, instance._score_std = finite
        return instance


class _Quiet:
    """Callbacks for reading a channel outside training: nothing to log, nothing stops."""

    logger = logging.getLogger(__name__)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Ignore the point."""

    def check_stop(self) -> None:
        """Never stop."""
