"""``linear-learner``: SageMaker's linear learner, trained in mini-batches from a stream.

Like SageMaker's, it reads the train channel once to learn each feature's mean
and scale (and the label's, for regression), then runs ``epochs`` passes of
mini-batch SGD or Adam over ``train.batches(...)``; memory holds a shuffle
window of a few mini-batches, never the data set.

The optimizer is written here in NumPy on purpose: it has to stream mini-batches
with SageMaker's hyperparameters (``wd``, ``l1``, ``momentum``, Adam's betas, the
learning-rate schedule, class weights, early stopping on validation loss) and a
softmax for multiclass, and scikit-learn's ``SGDClassifier`` has neither Adam
nor a softmax loss with these semantics; torch would bring a heavy dependency
for a few matrix products.

The artifact is two ``.npy`` arrays (weights and bias, with the normalization
folded in) saved without pickles, plus ``sagelab-model.json``.

A checkpoint is the state at the end of an epoch: weights, the best epoch's
weights, the optimizer's moments (``.npy``), its step and learning rate, the
shuffling RNG's state (plain integers), and early stopping's counters (JSON). A
resumed run recomputes the normalization in its first pass, restores that state
and starts the next epoch: it ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

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
    CheckpointFolder,
    ResumePoint,
    as_features,
    binary_prediction,
    check_thread_count,
    class_labels,
    declare_metrics,
    is_sparse,
    load_npy,
    multiclass_prediction,
    read_metadata,
    regression_labels,
    regression_prediction,
    require_two_classes,
    restore,
    save_npy,
    softmax,
    validate_more,
    write_metadata,
)
from sagelab.algorithms._hyperparameters import Hyperparameter
from sagelab.errors import InvalidInput

__all__ = ["LinearLearner"]

WEIGHTS_FILE = "weights.npy"
BIAS_FILE = "bias.npy"

#: Hyperparameters a resumed run may change: how far to train and when to stop early.
#: Every other one shapes the weights a checkpoint holds.
_MAY_CHANGE_ON_RESUME = ("epochs", "early_stopping_patience", "early_stopping_tolerance")

#: Rows shuffled together, in mini-batches: bounds memory while breaking up runs of
#: one label in data that arrives sorted.
_SHUFFLE_WINDOW = 8

_LOSSES = {
    "binary_classifier": ("logistic",),
    "multiclass_classifier": ("softmax_loss",),
    "regressor": ("squared_loss", "absolute_loss", "huber_loss"),
}
_AUTO_LOSS = {p: losses[0] for p, losses in _LOSSES.items()}

Direction = Literal["Maximize", "Minimize"]

_METRICS: dict[str, tuple[Direction, str]] = {
    "objective_loss": ("Minimize", "Mean of the loss function"),
    "binary_classification_accuracy": ("Maximize", "Accuracy (binary)"),
    "binary_f_beta": ("Maximize", "F-beta score (binary)"),
    "precision": ("Maximize", "Precision (binary)"),
    "recall": ("Maximize", "Recall (binary)"),
    "roc_auc_score": ("Maximize", "Area under the ROC curve (binary)"),
    "multiclass_accuracy": ("Maximize", "Accuracy (multiclass)"),
    "multiclass_top_k_accuracy": ("Maximize", "Top-k accuracy (multiclass)"),
    "macro_precision": ("Maximize", "Precision averaged over classes"),
    "macro_recall": ("Maximize", "Recall averaged over classes"),
    "macro_f_beta": ("Maximize", "F-beta averaged over classes"),
    "rmse": ("Minimize", "Root mean squared error"),
    "mse": ("Minimize", "Mean squared error"),
    "absolute_loss": ("Minimize", "Mean absolute error"),
}

_HYPERPARAMETERS = (
    Hyperparameter(
        "predictor_type",
        "str",
        choices=("binary_classifier", "multiclass_classifier", "regressor"),
        required=True,
        help="The problem to solve.",
        tunable=False,
    ),
    Hyperparameter(
        "num_classes",
        "int",
        None,
        low=2,
        high=1_000_000,
        help="Classes of a multiclass classifier (default: largest label + 1).",
        tunable=False,
    ),
    Hyperparameter("epochs", "int", 15, low=1, help="Passes over the training data."),
    Hyperparameter("mini_batch_size", "int", 1000, low=1, help="Rows per update."),
    Hyperparameter("optimizer", "str", "auto", choices=("auto", "sgd", "adam"), help="auto: adam."),
    Hyperparameter(
        "learning_rate",
        "float",
        None,
        low=0,
        low_open=True,
        help="Step size (default: 0.01).",
    ),
    Hyperparameter(
        "momentum", "float", None, low=0, high=1, high_open=True, help="SGD momentum (default 0.9)."
    ),
    Hyperparameter("beta_1", "float", 0.9, low=0, high=1, high_open=True, help="Adam's beta_1."),
    Hyperparameter("beta_2", "float", 0.999, low=0, high=1, high_open=True, help="Adam's beta_2."),
    Hyperparameter("l1", "float", 0.0, low=0, help="L1 regularization (proximal step)."),
    Hyperparameter("wd", "float", 0.0, low=0, help="Weight decay (L2 regularization)."),
    Hyperparameter("use_bias", "bool", True, help="Learn a bias term.", tunable=False),
    Hyperparameter(
        "normalize_data", "bool", True, help="Scale features (and center dense ones) first."
    ),
    Hyperparameter(
        "normalize_label",
        "bool",
        None,
        help="Center and scale the label of a regressor (default: true for regressors).",
    ),
    Hyperparameter(
        "loss",
        "str",
        "auto",
        choices=("auto", "logistic", "softmax_loss", "squared_loss", "absolute_loss", "huber_loss"),
        help="Loss function (auto: logistic, softmax_loss or squared_loss by predictor_type).",
        tunable=False,
    ),
    Hyperparameter(
        "huber_delta",
        "float",
        1.0,
        low=0,
        low_open=True,
        help="Huber loss threshold (label units).",
    ),
    Hyperparameter(
        "positive_example_weight_mult",
        "float",
        1.0,
        low=0,
        low_open=True,
        help="Weight of positive examples relative to negative ones (binary).",
    ),
    Hyperparameter(
        "balance_multiclass_weights",
        "bool",
        False,
        help="Weight classes so each counts equally in the loss (multiclass).",
    ),
    Hyperparameter("f_beta", "float", 1.0, low=0, low_open=True, help="Beta of the F-score."),
    Hyperparameter(
        "accuracy_top_k", "int", 3, low=1, help="k of multiclass_top_k_accuracy.", tunable=False
    ),
    Hyperparameter(
        "early_stopping_patience",
        "int",
        3,
        low=1,
        help="Epochs without improvement of the loss before training stops.",
    ),
    Hyperparameter(
        "early_stopping_tolerance",
        "float",
        0.001,
        low=0,
        help="Relative improvement of the loss that counts as one.",
    ),
    Hyperparameter("use_lr_scheduler", "bool", True, help="Decay the learning rate."),
    Hyperparameter(
        "lr_scheduler_step",
        "int",
        None,
        low=1,
        help="Updates between decays (default: one epoch's worth).",
    ),
    Hyperparameter(
        "lr_scheduler_factor", "float", 0.99, low=0, high=1, low_open=True, help="Decay factor."
    ),
    Hyperparameter(
        "lr_scheduler_minimum_lr", "float", 1e-5, low=0, help="Learning rate floor of the decay."
    ),
)


class _Stats:
    """What the first pass learns: sizes, feature scaling, label scaling, class counts."""

    def __init__(self) -> None:
        self.rows = 0
        self.features = 0
        self.sparse = False
        self.feature_names: list[str] = []
        self.mean = np.zeros(0)
        self.m2 = np.zeros(0)
        self.label_mean = 0.0
        self.label_m2 = 0.0
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, X: Any, y: np.ndarray, regression: bool) -> None:
        n = X.shape[0]
        if is_sparse(X):
            mean = np.asarray(X.mean(axis=0)).ravel()
            square = np.asarray(X.multiply(X).mean(axis=0)).ravel()
            m2 = np.maximum(square - mean * mean, 0.0) * n
        else:
            mean = X.mean(axis=0)
            m2 = ((X - mean) ** 2).sum(axis=0)
        # Chan et al.'s pairwise update: stable means and variances from batches.
        total = self.rows + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta * delta * self.rows * n / total
        if regression:
            y_mean = float(y.mean())
            y_delta = y_mean - self.label_mean
            self.label_mean += y_delta * n / total
            self.label_m2 += float(((y - y_mean) ** 2).sum()) + y_delta**2 * self.rows * n / total
        else:
            counts = np.bincount(y, minlength=self.counts.size)
            counts[: self.counts.size] += self.counts
            self.counts = counts
        self.rows = total

    def scale(self) -> np.ndarray:
        sd = np.sqrt(self.m2 / self.rows)
        return np.where(sd > 0, sd, 1.0)

    def label_scale(self) -> float:
        sd = math.sqrt(self.label_m2 / self.rows)
        return sd if sd > 0 else 1.0


class _Optimizer:
    """SGD with momentum or Adam over the weights and bias; wd as L2, l1 as a proximal step."""

    def __init__(self, params: dict[str, Any], steps_per_epoch: int) -> None:
        self.kind = "adam" if params["optimizer"] in ("auto", "adam") else "sgd"
        default_lr = 0.01
        self.lr = params["learning_rate"] or default_lr
        self.momentum = 0.9 if params["momentum"] is None else params["momentum"]
        self.beta_1, self.beta_2 = params["beta_1"], params["beta_2"]
        self.l1, self.wd = params["l1"], params["wd"]
        self.use_bias = params["use_bias"]
        self.schedule = params["use_lr_scheduler"]
        self.decay_every = params["lr_scheduler_step"] or steps_per_epoch
        self.factor = params["lr_scheduler_factor"]
        self.floor = params["lr_scheduler_minimum_lr"]
        self.t = 0
        self.state: dict[str, list[np.ndarray]] = {}

    def step(self, W: np.ndarray, b: np.ndarray, gW: np.ndarray, gb: np.ndarray) -> None:
        self.t += 1
        gW = gW + self.wd * W  # the bias is not decayed, as usual
        pairs = [("W", W, gW)] + ([("b", b, gb)] if self.use_bias else [])
        for key, param, grad in pairs:
            if key not in self.state:
                self.state[key] = [np.zeros_like(param), np.zeros_like(param)]
            first, second = self.state[key]
            if self.kind == "sgd":
                first *= self.momentum
                first -= self.lr * grad
                param += first
            else:
                first *= self.beta_1
                first += (1 - self.beta_1) * grad
                second *= self.beta_2
                second += (1 - self.beta_2) * grad * grad
                m_hat = first / (1 - self.beta_1**self.t)
                v_hat = second / (1 - self.beta_2**self.t)
                param -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        if self.l1 > 0:
            # Proximal step of the L1 term: exact zeros, unlike a subgradient.
            shrink = self.lr * self.l1
            W[...] = np.sign(W) * np.maximum(np.abs(W) - shrink, 0.0)
        if self.schedule and self.t % self.decay_every == 0:
            self.lr = max(self.lr * self.factor, self.floor)

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Its counters (JSON) and moments (arrays by file stem), for a checkpoint."""
        arrays = {
            f"optimizer_{key}_{i}": moment
            for key, pair in self.state.items()
            for i, moment in enumerate(pair)
        }
        return {"t": self.t, "lr": self.lr, "moments": sorted(self.state)}, arrays

    def restore(self, state: Any, arrays: Mapping[str, np.ndarray]) -> None:
        """Continue from a :meth:`snapshot` (``arrays`` has the moments' files loaded).

        Raises:
            InvalidInput: the counters are not numbers (a damaged checkpoint).
        """
        if not (
            isinstance(state, dict)
            and isinstance(state.get("t"), int)
            and isinstance(state.get("lr"), float)
            and state.get("moments")
            == sorted(k for k in ("W", "b") if f"optimizer_{k}_0" in arrays)
        ):
            raise InvalidInput(_DAMAGED)
        self.t, self.lr = int(state["t"]), float(state["lr"])
        self.state = {
            key: [arrays[f"optimizer_{key}_0"], arrays[f"optimizer_{key}_1"]]
            for key in state["moments"]
        }


_DAMAGED = (
    "The linear-learner checkpoint is damaged; delete it to train from the start, or give "
    "the job another checkpoint location."
)


@dataclass
class _Progress:
    """Where training stands at the end of an epoch, besides the optimizer and the RNG."""

    W: np.ndarray
    b: np.ndarray
    best_W: np.ndarray
    best_b: np.ndarray
    best_loss: float = math.inf
    reference: float = math.inf
    stale: int = 0
    epochs: int = 0
    stopped: bool = False

    def save(self, folder: CheckpointFolder, optimizer: _Optimizer, rng: Any) -> None:
        counters, moments = optimizer.snapshot()
        arrays = {
            "weights": self.W,
            "bias": self.b,
            "best_weights": self.best_W,
            "best_bias": self.best_b,
            **moments,
        }
        state = {
            "best_loss": _json_number(self.best_loss),
            "reference": _json_number(self.reference),
            "stale": self.stale,
            "stopped": self.stopped,
            "optimizer": counters,
            # PCG64's state: 128-bit integers, which JSON keeps exactly.
            "rng": rng.bit_generator.state,
        }

        def write(path: Path) -> None:
            for stem, array in arrays.items():
                save_npy(path / f"{stem}.npy", array)

        folder.save(self.epochs, state, write)

    def restore(self, point: ResumePoint, optimizer: _Optimizer, rng: Any) -> None:
        """Continue from a checkpoint written by :meth:`save`.

        Raises:
            NotFound: a file of the checkpoint is missing.
            InvalidInput: arrays of other shapes or unreadable counters (a damaged checkpoint).
        """
        shapes = {"W": self.W.shape, "b": self.b.shape}

        def array(stem: str, shape: tuple[int, ...]) -> np.ndarray:
            loaded = load_npy(point.folder / f"{stem}.npy")
            if loaded.shape != shape:
                raise InvalidInput(_DAMAGED)
            return loaded

        state = point.state
        counters = state.get("optimizer")
        moments = counters.get("moments") if isinstance(counters, dict) else None
        if not isinstance(moments, list) or not set(moments) <= set(shapes):
            raise InvalidInput(_DAMAGED)
        loaded = {
            f"optimizer_{key}_{i}": array(f"optimizer_{key}_{i}", shapes[key])
            for key in moments
            for i in (0, 1)
        }
        optimizer.restore(counters, loaded)
        best_loss, reference = state.get("best_loss"), state.get("reference")
        if not (
            all(v is None or isinstance(v, float) for v in (best_loss, reference))
            and isinstance(state.get("stale"), int)
            and isinstance(state.get("stopped"), bool)
        ):
            raise InvalidInput(_DAMAGED)
        try:
            rng.bit_generator.state = state.get("rng")
        except (TypeError, ValueError, KeyError):
            raise InvalidInput(_DAMAGED) from None
        self.W, self.b = array("weights", self.W.shape), array("bias", self.b.shape)
        self.best_W = array("best_weights", self.W.shape)
        self.best_b = array("best_bias", self.b.shape)
        self.best_loss = math.inf if best_loss is None else best_loss
        self.reference = math.inf if reference is None else reference
        self.stale, self.stopped = int(state["stale"]), bool(state["stopped"])
        self.epochs = point.iteration


def _json_number(value: float) -> float | None:
    """A loss for JSON, which has no infinity (the best before the first epoch)."""
    return value if math.isfinite(value) else None


class LinearLearner(Algorithm):
    """SageMaker's linear learner: logistic, softmax or regression losses on a linear model.

    Trains from ``train.batches(mini_batch_size)`` only (``streams_data``): a first
    pass learns the normalization and checks every label, then each epoch reads
    the channel again. Early stopping watches the validation loss (the training
    loss without a validation channel) with ``early_stopping_patience`` and
    ``early_stopping_tolerance``, and keeps the best epoch's weights.

    Emits ``train:objective_loss`` and ``validation:objective_loss`` per epoch,
    then the final validation metrics under SageMaker's names
    (``validation:binary_f_beta``, ``validation:roc_auc_score``, ``validation:rmse``...).

    Threads: prediction is NumPy arithmetic on the calling thread;
    :meth:`set_prediction_threads` is accepted for a uniform serving interface.
    """

    name: ClassVar[str] = "linear-learner"
    problem_types: ClassVar[tuple[str, ...]] = (
        "binary_classifier",
        "multiclass_classifier",
        "regressor",
    )
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = _HYPERPARAMETERS
    content_types: ClassVar[tuple[str, ...]] = ("text/csv", "text/libsvm", "application/x-parquet")
    metrics: ClassVar[tuple[MetricDefinition, ...]] = declare_metrics(
        {name: d for name, (d, _) in _METRICS.items()},
        {name: h for name, (_, h) in _METRICS.items()},
        channels=("train", "validation", "test"),
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        sparse_input=True,
        needs_target=True,
        streams_data=True,
        checkpoints=True,
        early_stopping=True,
    )
    help: ClassVar[str] = (
        "Linear models (logistic, softmax, least squares) trained by mini-batch SGD or Adam "
        "from a stream, with SageMaker's linear-learner hyperparameters and metrics."
    )
    #: Small, fast settings per problem type, for examples and the conformance suite.
    example_hyperparameters: ClassVar[dict[str, dict[str, Any]]] = {
        p: {"predictor_type": p, "epochs": 5, "mini_batch_size": 64}
        for p in ("binary_classifier", "multiclass_classifier", "regressor")
    }

    def __init__(self, hyperparameters: Mapping[str, Any] | None = None, *, seed: int = 0) -> None:
        validate_more(
            self.name,
            lambda: super(LinearLearner, self).__init__(hyperparameters, seed=seed),
            [],
            self._relation_problems,
        )
        self._weights: np.ndarray | None = None
        self._bias: np.ndarray | None = None
        self._num_classes: int | None = None

    def _relation_problems(self) -> list[str]:
        loss, problem = self.params["loss"], self.problem_type()
        if loss != "auto" and loss not in _LOSSES[problem]:
            return [
                f"The loss {loss!r} of linear-learner does not fit predictor_type {problem!r}; "
                f"use {' or '.join(repr(x) for x in ('auto', *_LOSSES[problem]))}."
            ]
        return []

    def problem_type(self) -> str:
        return str(self.params["predictor_type"])

    def _loss(self) -> str:
        loss = str(self.params["loss"])
        return _AUTO_LOSS[self.problem_type()] if loss == "auto" else loss

    # ------------------------------------------------------------------ reading the stream
    def _labels(self, y: Any, what: str, offset: int) -> np.ndarray:
        problem = self.problem_type()
        if problem == "regressor":
            return regression_labels(y, algorithm=self.name, what=what, offset=offset)
        return class_labels(
            y,
            algorithm=self.name,
            problem_type=problem,
            num_classes=self._num_classes or self.params["num_classes"],
            what=what,
            offset=offset,
        )

    def _read(
        self, source: DataSource, batch_size: int, what: str, callbacks: TrainingCallbacks
    ) -> Iterator[tuple[Any, np.ndarray]]:
        """Checked (features, labels) batches of a channel, in order."""
        offset = 0
        for batch in source.batches(batch_size):
            callbacks.check_stop()
            X = as_features(batch.X, algorithm=self.name, sparse_ok=True, allow_missing=False)
            if self.feature_names:
                self.check_features(X)
            y = self._labels(batch.y, what, offset)
            offset += X.shape[0]
            yield X, y

    def _scan(self, train: DataSource, callbacks: TrainingCallbacks) -> _Stats:
        stats = _Stats()
        regression = self.problem_type() == "regressor"
        for X, y in self._read(train, self.params["mini_batch_size"], "train", callbacks):
            if stats.rows == 0:
                stats.features, stats.sparse = X.shape[1], is_sparse(X)
                stats.mean, stats.m2 = np.zeros(X.shape[1]), np.zeros(X.shape[1])
                names = list(getattr(train, "feature_names", None) or [])
                stats.feature_names = names or [f"f{i}" for i in range(X.shape[1])]
                self.feature_names = stats.feature_names
            stats.add(X, y, regression)
        if stats.rows == 0:
            raise InvalidInput(f"The train channel of {self.name} has no rows.")
        if not regression:
            require_two_classes(stats.counts, self.name)
        return stats

    # ------------------------------------------------------------------ training
    def fit(
        self,
        train: DataSource,
        validation: DataSource | None,
        callbacks: TrainingCallbacks,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Stream mini-batches for ``epochs`` epochs with early stopping on the loss.

        With a ``checkpoint``, the state at the end of an epoch is saved whenever it
        is due, and a run that finds one continues at the start of the next epoch
        (steps of its metrics continue too).

        Raises:
            InvalidInput: unusable features or labels (every train label is checked in
                the first pass, before any update), or a checkpoint that does not fit
                this run.
        """
        self.feature_names, self._num_classes = [], None
        stats = self._scan(train, callbacks)
        problem = self.problem_type()
        d = stats.features
        if problem == "multiclass_classifier":
            self._num_classes = self.params["num_classes"] or stats.counts.size
        elif problem == "binary_classifier":
            self._num_classes = 2
        outputs = int(self._num_classes or 1) if problem == "multiclass_classifier" else 1
        normalize = self.params["normalize_data"]
        mean = stats.mean if normalize and not stats.sparse else np.zeros(d)
        scale = stats.scale() if normalize else np.ones(d)
        norm_label = self.params["normalize_label"]
        if problem == "regressor" and (norm_label is None or norm_label):
            y_mean, y_scale = stats.label_mean, stats.label_scale()
        else:
            y_mean, y_scale = 0.0, 1.0
        class_weight = self._class_weights(stats)

        batch_size = self.params["mini_batch_size"]
        optimizer = _Optimizer(self.params, max(1, math.ceil(stats.rows / batch_size)))
        rng = np.random.default_rng(self.seed)
        zeros = np.zeros((d, outputs)), np.zeros(outputs)
        run = _Progress(*zeros, zeros[0].copy(), zeros[1].copy())
        folder = None
        if checkpoint is not None:
            folder = CheckpointFolder(
                checkpoint,
                self,
                features=d,
                rows=stats.rows,
                unit="epoch",
                total="epochs",
                may_change=_MAY_CHANGE_ON_RESUME,
                logger=callbacks.logger,
            )
            point = folder.resume()
            if point is not None:
                run.restore(point, optimizer, rng)
        W, b = run.W, run.b
        patience, tolerance = (
            self.params["early_stopping_patience"],
            self.params["early_stopping_tolerance"],
        )
        for epoch in range(run.epochs, self.params["epochs"]):
            if run.stopped:  # resumed from the epoch where early stopping decided
                break
            total, rows = 0.0, 0
            for X, y in self._read(train, batch_size * _SHUFFLE_WINDOW, "train", callbacks):
                A = _normalize(X, mean, scale)
                order = rng.permutation(X.shape[0])
                for start in range(0, X.shape[0], batch_size):
                    idx = order[start : start + batch_size]
                    batch_loss, gW, gb = self._gradient(
                        A[idx], y[idx], W, b, class_weight, y_mean, y_scale
                    )
                    optimizer.step(W, b, gW, gb)
                    total, rows = total + batch_loss, rows + idx.size
            train_loss = total / rows
            callbacks.log_metric("train:objective_loss", train_loss, step=epoch)
            monitored = train_loss
            if validation is not None:
                folded = _fold(W, b, mean, scale, y_mean, y_scale)
                monitored = self._objective(validation, folded, "validation", callbacks)
                callbacks.log_metric("validation:objective_loss", monitored, step=epoch)
            if not math.isfinite(monitored):
                raise InvalidInput(
                    f"{self.name} diverged (the loss became {monitored}); lower learning_rate "
                    "or keep normalize_data on."
                )
            if monitored < run.best_loss:
                run.best_loss, run.best_W, run.best_b = monitored, W.copy(), b.copy()
            # SageMaker's rule: an improvement smaller than the tolerance, relative to
            # the best loss so far, does not reset the patience.
            reference = run.reference
            if reference - monitored > tolerance * abs(reference) or not math.isfinite(reference):
                run.reference, run.stale = monitored, 0
            else:
                run.stale += 1
                run.stopped = run.stale >= patience
            run.epochs = epoch + 1
            if folder is not None and folder.due(run.epochs):
                run.save(folder, optimizer, rng)
            if run.stopped:
                callbacks.logger.info(
                    "linear-learner stopped early after epoch %d: the loss has not improved "
                    "by a relative %g for %d epochs.",
                    epoch,
                    tolerance,
                    patience,
                )
                break
        self._weights, self._bias = _fold(run.best_W, run.best_b, mean, scale, y_mean, y_scale)
        if validation is not None:
            for name, value in self.evaluate(validation, "validation", callbacks=callbacks).items():
                callbacks.log_metric(name, value, step=run.epochs)

    def _class_weights(self, stats: _Stats) -> np.ndarray | None:
        problem = self.problem_type()
        if problem == "binary_classifier" and self.params["positive_example_weight_mult"] != 1.0:
            return np.array([1.0, self.params["positive_example_weight_mult"]])
        if problem == "multiclass_classifier" and self.params["balance_multiclass_weights"]:
            counts = np.zeros(self._num_classes or 0)
            counts[: stats.counts.size] = stats.counts
            present = counts > 0
            weights = np.ones_like(counts)
            weights[present] = stats.rows / (present.sum() * counts[present])
            return weights
        return None

    def _gradient(
        self,
        A: Any,
        y: np.ndarray,
        W: np.ndarray,
        b: np.ndarray,
        class_weight: np.ndarray | None,
        y_mean: float,
        y_scale: float,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """The summed loss (label units) and the mean weighted gradient of one mini-batch."""
        n = A.shape[0]
        Z = np.asarray(A @ W) + b
        loss = self._loss()
        if loss == "logistic":
            z = Z[:, 0]
            G = (_sigmoid(z) - y)[:, None]
            losses = np.logaddexp(0.0, z) - y * z
        elif loss == "softmax_loss":
            P = softmax(Z)
            rows = np.arange(n)
            losses = -np.log(np.clip(P[rows, y], 1e-15, 1.0))
            G = P
            G[rows, y] -= 1.0
        else:
            r = Z[:, 0] - (y - y_mean) / y_scale
            if loss == "squared_loss":
                G, losses = r[:, None], (r * y_scale) ** 2
            elif loss == "absolute_loss":
                G, losses = np.sign(r)[:, None], np.abs(r) * y_scale
            else:
                delta = self.params["huber_delta"] / y_scale
                G = np.clip(r, -delta, delta)[:, None]
                a = np.abs(r) * y_scale
                hd = self.params["huber_delta"]
                losses = np.where(a <= hd, 0.5 * a * a, hd * (a - 0.5 * hd))
        if class_weight is not None:
            G = G * class_weight[y.astype(np.int64)][:, None]
        gW = np.asarray(A.T @ G) / n
        gb = G.sum(axis=0) / n
        return float(losses.sum()), gW, gb

    def _objective(
        self,
        source: DataSource,
        folded: tuple[np.ndarray, np.ndarray],
        what: str,
        callbacks: TrainingCallbacks,
    ) -> float:
        total, rows = 0.0, 0
        for X, y in self._read(source, self.params["mini_batch_size"], what, callbacks):
            scores = _scores(X, *folded)
            total += self._objective_of(y, scores) * X.shape[0]
            rows += X.shape[0]
        return total / rows

    def _objective_of(self, y: np.ndarray, scores: np.ndarray) -> float:
        loss = self._loss()
        if loss == "logistic":
            return M.log_loss(y, _sigmoid(scores[:, 0]))
        if loss == "softmax_loss":
            return M.multi_log_loss(y, softmax(scores))
        if loss == "squared_loss":
            return M.mse(y, scores[:, 0])
        if loss == "absolute_loss":
            return M.absolute_loss(y, scores[:, 0])
        return M.huber_loss(y, scores[:, 0], self.params["huber_delta"])

    # ------------------------------------------------------------------ prediction
    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        if self._weights is None or self._bias is None:
            raise InvalidInput(
                "This linear-learner model is not trained: call fit() or load() first."
            )
        return self._weights, self._bias

    def set_prediction_threads(self, threads: int) -> None:
        """Accepted for a uniform serving interface; prediction runs on the calling thread.

        Raises:
            InvalidInput: not an integer >= 1.
        """
        check_thread_count(threads, self.name)

    def _prediction(self, scores: np.ndarray) -> Prediction:
        problem = self.problem_type()
        if problem == "binary_classifier":
            return binary_prediction(_sigmoid(scores[:, 0]))
        if problem == "multiclass_classifier":
            return multiclass_prediction(softmax(scores))
        return regression_prediction(scores[:, 0])

    def predict(self, X: Any) -> Prediction:
        """Probabilities and labels for classifiers, values for regressors.

        Raises:
            InvalidInput: features that are not finite numbers, or a different number of them.
        """
        W, b = self._model()
        X = as_features(X, algorithm=self.name, sparse_ok=True, allow_missing=False)
        self.check_features(X)
        return self._prediction(_scores(X, W, b))

    def evaluate(
        self,
        data: DataSource,
        channel: str = "test",
        *,
        callbacks: TrainingCallbacks | None = None,
    ) -> dict[str, float]:
        """SageMaker's final metrics on a labelled channel (``test:binary_f_beta``...).

        Streams the channel; only one score per row is kept, for AUC and friends.

        Raises:
            InvalidInput: unusable features or labels.
        """
        W, b = self._model()
        ys, scores = [], []
        for X, y in self._read(
            data, self.params["mini_batch_size"], channel, callbacks or _Quiet()
        ):
            ys.append(y)
            scores.append(_scores(X, W, b))
        y_all, s_all = np.concatenate(ys), np.concatenate(scores)
        out = {"objective_loss": self._objective_of(y_all, s_all)}
        problem = self.problem_type()
        if problem == "binary_classifier":
            p = _sigmoid(s_all[:, 0])
            labels = (p > 0.5).astype(np.int64)
            precision, recall = M.precision_recall(y_all, labels)
            out |= {
                "binary_classification_accuracy": M.accuracy(y_all, labels),
                "binary_f_beta": M.f_beta(precision, recall, self.params["f_beta"]),
                "precision": precision,
                "recall": recall,
                "roc_auc_score": M.roc_auc(y_all, p),
            }
        elif problem == "multiclass_classifier":
            P = softmax(s_all)
            labels = np.argmax(P, axis=1)
            mp, mr, mf = M.macro_scores(y_all, labels, P.shape[1], self.params["f_beta"])
            out |= {
                "multiclass_accuracy": M.accuracy(y_all, labels),
                "multiclass_top_k_accuracy": M.top_k_accuracy(
                    y_all, P, self.params["accuracy_top_k"]
                ),
                "macro_precision": mp,
                "macro_recall": mr,
                "macro_f_beta": mf,
            }
        else:
            values = s_all[:, 0]
            out |= {
                "rmse": M.rmse(y_all, values),
                "mse": M.mse(y_all, values),
                "absolute_loss": M.absolute_loss(y_all, values),
            }
        return {f"{channel}:{name}": value for name, value in out.items()}

    def feature_importance(self) -> dict[str, float] | None:
        """The absolute weight of each feature in the original units (summed over classes)."""
        W, _ = self._model()
        return {n: float(v) for n, v in zip(self.feature_names, np.abs(W).sum(axis=1), strict=True)}

    # ------------------------------------------------------------------ artifacts
    def save(self, directory: Path) -> None:
        """Write ``weights.npy`` and ``bias.npy`` (no pickles) and ``sagelab-model.json``.

        Raises:
            InvalidInput: the model is not trained.
        """
        W, b = self._model()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_npy(directory / WEIGHTS_FILE, W)
        save_npy(directory / BIAS_FILE, b)
        write_metadata(
            directory,
            self,
            problem_type=self.problem_type(),
            num_classes=self._num_classes,
            files=[WEIGHTS_FILE, BIAS_FILE],
            versions={},
        )

    @classmethod
    def load(cls, directory: Path) -> LinearLearner:
        """Read a model written by :meth:`save`; arrays load with ``allow_pickle=False``.

        Raises:
            NotFound: no model in ``directory``.
            InvalidInput: the files are not a linear-learner model saved by sagelab.
        """
        directory = Path(directory)
        meta = read_metadata(directory, cls.name, [WEIGHTS_FILE, BIAS_FILE])
        instance = restore(cls, meta)
        W, b = load_npy(directory / WEIGHTS_FILE), load_npy(directory / BIAS_FILE)
        if W.ndim != 2 or b.shape != (W.shape[1],) or W.shape[0] != len(instance.feature_names):
            raise InvalidInput(
                f"The weights in {str(directory)!r} do not fit its {len(instance.feature_names)} "
                "features; save the model again."
            )
        num_classes = meta.get("num_classes")
        instance._num_classes = int(num_classes) if isinstance(num_classes, int) else None
        instance._weights, instance._bias = W, b
        return instance


class _Quiet:
    """Callbacks for reading a channel outside training: nothing to log, nothing stops."""

    logger = logging.getLogger(__name__)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Ignore the point."""

    def check_stop(self) -> None:
        """Never stop."""


def _normalize(X: Any, mean: np.ndarray, scale: np.ndarray) -> Any:
    """Scaled (and, for dense rows, centered) features of one chunk."""
    if is_sparse(X):
        return X.multiply(1.0 / scale).tocsr()
    return (X - mean) / scale


def _fold(
    W: np.ndarray,
    b: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    y_mean: float,
    y_scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias on the original features and label: predicting needs no scaler."""
    W_orig = W / scale[:, None]
    b_orig = b - mean @ W_orig
    return W_orig * y_scale, b_orig * y_scale + y_mean


def _scores(X: Any, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Linear scores of rows; each row's result does not depend on the other rows."""
    if is_sparse(X):
        return np.asarray(X @ W) + b
    # einsum without BLAS: a GEMM's blocking depends on the batch's shape, which would
    # make a row's score differ in the last bit with its neighbours.
    return np.einsum("ij,jk->ik", X, W) + b


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))
