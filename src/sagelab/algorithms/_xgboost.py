"""``xgboost``: gradient-boosted trees with SageMaker's hyperparameter and metric names.

Training goes through XGBoost's native API (``xgboost.train`` over a ``DMatrix``
with ``evals`` and callbacks), so a model here equals the one a direct call with
the same parameters and seed gives. The artifact is XGBoost's own UBJSON model
file, which holds trees and numbers only, next to ``sagelab-model.json``.

Checkpoints hold the booster (UBJSON) and the early-stopping state; a resumed run
continues with ``xgb_model=`` for the rounds still to do and ends bit-identical to
an uninterrupted one, unless rows or columns are subsampled: XGBoost's random
generator is not in the model file, so the rounds after the checkpoint draw anew.
"""

from __future__ import annotations

import ctypes
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

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
    EarlyStopping,
    as_features,
    binary_prediction,
    check_thread_count,
    class_labels,
    declare_metrics,
    multiclass_prediction,
    read_metadata,
    regression_labels,
    regression_prediction,
    require,
    require_two_classes,
    resolve_threads,
    restore,
    softmax,
    validate_more,
    write_metadata,
)
from sagelab.algorithms._hyperparameters import Hyperparameter
from sagelab.errors import AlgorithmError, InvalidInput, closest

__all__ = ["TRAIN_METRIC_FRACTION", "TRAIN_METRIC_ROWS", "XGBoostAlgorithm"]

#: Train metrics are computed on every row up to this many, else on a seeded sample of
#: this many rows or :data:`TRAIN_METRIC_FRACTION` of them, whichever is more.
TRAIN_METRIC_ROWS = 20_000
TRAIN_METRIC_FRACTION = 0.02

MODEL_FILE = "model.ubj"

_BINARY = ("binary:logistic", "binary:logitraw", "binary:hinge")
_MULTICLASS = ("multi:softprob", "multi:softmax")
_REGRESSION = (
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "count:poisson",
    "reg:gamma",
)

#: Hyperparameters a resumed run may change: how far to train, how patient early
#: stopping is, threads. Every other one shapes the trees a checkpoint holds.
_MAY_CHANGE_ON_RESUME = ("num_round", "early_stopping_rounds", "nthread")
#: Hyperparameters that draw from XGBoost's random generator when below 1.
_SAMPLING = ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode")

#: Lower bounds of the labels some regression objectives need: (bound, open?).
_LABEL_FLOOR: dict[str, tuple[float, bool]] = {
    "reg:squaredlogerror": (-1.0, True),
    "count:poisson": (0.0, False),
    "reg:gamma": (0.0, True),
}

Direction = Literal["Maximize", "Minimize"]

#: XGBoost's evaluation metrics, their direction and what they mean.
_METRICS: dict[str, tuple[Direction, str]] = {
    "auc": ("Maximize", "Area under the ROC curve"),
    "aucpr": ("Maximize", "Area under the precision-recall curve"),
    "error": ("Minimize", "Binary classification error rate (threshold 0.5)"),
    "logloss": ("Minimize", "Negative log-likelihood"),
    "merror": ("Minimize", "Multiclass classification error rate"),
    "mlogloss": ("Minimize", "Multiclass negative log-likelihood"),
    "rmse": ("Minimize", "Root mean squared error"),
    "rmsle": ("Minimize", "Root mean squared log error"),
    "mae": ("Minimize", "Mean absolute error"),
    "mape": ("Minimize", "Mean absolute percentage error"),
    "mphe": ("Minimize", "Mean Pseudo-Huber error"),
    "poisson-nloglik": ("Minimize", "Poisson negative log-likelihood"),
    "gamma-nloglik": ("Minimize", "Gamma negative log-likelihood"),
    "gamma-deviance": ("Minimize", "Residual deviance for gamma regression"),
}

#: Which metrics make sense for which problem (XGBoost fails or misleads otherwise).
_METRICS_FOR = {
    "binary_classifier": ("auc", "aucpr", "error", "logloss", "rmse", "mae"),
    "multiclass_classifier": ("auc", "merror", "mlogloss"),
    "regressor": tuple(
        m for m in _METRICS if m not in ("auc", "aucpr", "error", "logloss", "merror", "mlogloss")
    ),
}

#: XGBoost's own default metric per objective, named explicitly so the names are known.
_DEFAULT_METRIC = {
    "binary:logistic": "logloss",
    "binary:logitraw": "logloss",
    "binary:hinge": "error",
    "multi:softprob": "mlogloss",
    "multi:softmax": "mlogloss",
    "reg:squarederror": "rmse",
    "reg:squaredlogerror": "rmsle",
    "reg:logistic": "rmse",
    "reg:pseudohubererror": "mphe",
    "reg:absoluteerror": "mae",
    "count:poisson": "poisson-nloglik",
    "reg:gamma": "gamma-deviance",
}

_HYPERPARAMETERS = (
    Hyperparameter("num_round", "int", low=1, required=True, help="Number of boosting rounds."),
    Hyperparameter("eta", "float", 0.3, low=0, high=1, help="Step size shrinkage (learning rate)."),
    Hyperparameter("max_depth", "int", 6, low=0, help="Maximum depth of a tree (0: no limit)."),
    Hyperparameter(
        "min_child_weight", "float", 1.0, low=0, help="Minimum sum of instance weight in a child."
    ),
    Hyperparameter("gamma", "float", 0.0, low=0, help="Minimum loss reduction to make a split."),
    Hyperparameter(
        "max_delta_step", "float", 0.0, low=0, help="Maximum delta step of a leaf (0: none)."
    ),
    Hyperparameter(
        "subsample", "float", 1.0, low=0, high=1, low_open=True, help="Row subsample ratio."
    ),
    Hyperparameter(
        "colsample_bytree",
        "float",
        1.0,
        low=0,
        high=1,
        low_open=True,
        help="Column subsample ratio per tree.",
    ),
    Hyperparameter(
        "colsample_bylevel",
        "float",
        1.0,
        low=0,
        high=1,
        low_open=True,
        help="Column subsample ratio per level.",
    ),
    Hyperparameter(
        "colsample_bynode",
        "float",
        1.0,
        low=0,
        high=1,
        low_open=True,
        help="Column subsample ratio per split.",
    ),
    Hyperparameter("lambda", "float", 1.0, low=0, help="L2 regularization on leaf weights."),
    Hyperparameter("alpha", "float", 0.0, low=0, help="L1 regularization on leaf weights."),
    Hyperparameter(
        "tree_method",
        "str",
        "auto",
        choices=("auto", "exact", "approx", "hist"),
        help="Tree construction algorithm.",
        tunable=False,
    ),
    Hyperparameter("max_bin", "int", 256, low=2, help="Maximum number of bins (hist, approx)."),
    Hyperparameter(
        "grow_policy",
        "str",
        "depthwise",
        choices=("depthwise", "lossguide"),
        help="How new nodes are added to a tree.",
    ),
    Hyperparameter(
        "max_leaves", "int", 0, low=0, help="Maximum number of leaves (lossguide; 0: no limit)."
    ),
    Hyperparameter(
        "scale_pos_weight",
        "float",
        1.0,
        low=0,
        low_open=True,
        help="Weight of positive examples (binary), e.g. negatives / positives.",
    ),
    Hyperparameter(
        "objective",
        "str",
        "reg:squarederror",
        choices=(*_REGRESSION, *_BINARY, *_MULTICLASS),
        help="Learning objective; decides the problem type.",
        tunable=False,
    ),
    Hyperparameter(
        "num_class",
        "int",
        None,
        low=2,
        help="Number of classes for multi:* objectives (default: largest label + 1).",
        tunable=False,
    ),
    Hyperparameter(
        "eval_metric",
        "str",
        None,
        help="Comma-separated evaluation metrics (default: by objective); the last one drives "
        "early stopping. One of: " + ", ".join(_METRICS) + ".",
        tunable=False,
    ),
    Hyperparameter(
        "early_stopping_rounds",
        "int",
        None,
        low=1,
        help="Stop when the last validation metric has not improved for this many rounds; "
        "needs a validation channel.",
        tunable=False,
    ),
    Hyperparameter(
        "nthread",
        "int",
        None,
        low=1,
        help="Training threads (default: every core).",
        tunable=False,
    ),
)


def _eval_metric_problems(value: Any) -> list[str]:
    if value is None:
        return []
    problems = []
    for item in str(value).split(","):
        name = item.strip()
        if name not in _METRICS:
            problems.append(
                f"The 'eval_metric' hyperparameter of xgboost must be a comma-separated list of "
                f"{', '.join(_METRICS)}. Got {name!r}.{closest(name, _METRICS)}"
            )
    return problems


def _problem_of(objective: str) -> str:
    if objective in _BINARY:
        return "binary_classifier"
    if objective in _MULTICLASS:
        return "multiclass_classifier"
    return "regressor"


class XGBoostAlgorithm(Algorithm):
    """XGBoost with SageMaker's hyperparameter names (``num_round``, ``eta``, ``objective``...).

    The ``objective`` decides the problem: ``binary:*`` a binary classifier,
    ``multi:*`` a multiclass classifier, anything else a regressor. Metrics are
    XGBoost's, named as SageMaker's XGBoost emits them: ``train:<metric>`` and
    ``validation:<metric>`` for every ``eval_metric`` at every round.

    Threads: training uses ``nthread`` (default: every core). A loaded model
    predicts on every core until :meth:`set_prediction_threads` says otherwise; a
    serving worker sets it to 1.
    """

    name: ClassVar[str] = "xgboost"
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
        streams_data=False,
        checkpoints=True,
        early_stopping=True,
    )
    help: ClassVar[str] = (
        "Gradient-boosted trees (XGBoost) for classification and regression, with "
        "SageMaker's XGBoost hyperparameter and metric names."
    )
    #: Small, fast settings per problem type, for examples and the conformance suite.
    example_hyperparameters: ClassVar[dict[str, dict[str, Any]]] = {
        "binary_classifier": {
            "num_round": 10,
            "objective": "binary:logistic",
            "eval_metric": "auc",
        },
        "multiclass_classifier": {"num_round": 10, "objective": "multi:softprob"},
        "regressor": {"num_round": 10, "objective": "reg:squarederror", "max_depth": 3},
    }

    def __init__(self, hyperparameters: Mapping[str, Any] | None = None, *, seed: int = 0) -> None:
        given = dict(hyperparameters or {})
        validate_more(
            self.name,
            lambda: super(XGBoostAlgorithm, self).__init__(given, seed=seed),
            _eval_metric_problems(given.get("eval_metric")),
            self._relation_problems,
        )
        self._booster: Any = None
        self._num_classes: int | None = None
        self._predict_threads: int | None = None
        self._dense: _DensePredictor | None = None

    def _relation_problems(self) -> list[str]:
        problem = self.problem_type()
        allowed = _METRICS_FOR[problem]
        return [
            f"The eval_metric {m!r} of xgboost does not fit the objective "
            f"{self.params['objective']!r} ({problem}); use one of {', '.join(allowed)}."
            for m in self._eval_metrics()
            if m not in allowed
        ]

    def _train_metric_matrix(self, xgb: Any, X: Any, y: np.ndarray, threads: int) -> Any:
        """The rows ``train:*`` metrics are computed on: all of them up to
        :data:`TRAIN_METRIC_ROWS`, else a seeded sample of that many or of
        :data:`TRAIN_METRIC_FRACTION` of the rows, whichever is more.

        Like SageMaker's XGBoost, sagelab reports train metrics every round. Over every
        row, a metric such as AUC costs more than the round itself on a large channel;
        a sample tracks it closely (AUC's standard error on 20,000 rows is about 0.003)
        and, as a fixed share of the rows, keeps its cost a fixed small share of the
        training (about 2 % on 1M rows × 50 features). Training always uses every row.
        """
        n = X.shape[0]
        size = max(TRAIN_METRIC_ROWS, round(n * TRAIN_METRIC_FRACTION))
        if n <= size:
            return None
        rows = np.sort(np.random.default_rng(self.seed).choice(n, size, replace=False))
        return xgb.DMatrix(X[rows], label=y[rows], nthread=threads)

    def _eval_metrics(self) -> list[str]:
        value = self.params["eval_metric"]
        if value is None:
            return [_DEFAULT_METRIC[self.params["objective"]]]
        return [m.strip() for m in str(value).split(",")]

    def problem_type(self) -> str:
        return _problem_of(self.params["objective"])

    # ------------------------------------------------------------------ training
    def _labels(self, y: Any, what: str, num_classes: int | None) -> tuple[np.ndarray, int | None]:
        problem = self.problem_type()
        if problem == "regressor":
            low, low_open = _LABEL_FLOOR.get(self.params["objective"], (None, False))
            if self.params["objective"] == "reg:logistic":
                labels = regression_labels(y, algorithm=self.name, what=what)
                if ((labels < 0) | (labels > 1)).any():
                    raise InvalidInput(
                        f"The objective 'reg:logistic' of xgboost needs {what} labels in [0, 1]; "
                        "use binary:logistic for classes, or reg:squarederror."
                    )
                return labels, None
            return regression_labels(
                y,
                algorithm=self.name,
                what=what,
                low=low,
                low_open=low_open,
                objective=self.params["objective"],
            ), None
        labels = class_labels(
            y, algorithm=self.name, problem_type=problem, num_classes=num_classes, what=what
        )
        if num_classes is None:
            require_two_classes(np.bincount(labels), self.name)
            num_classes = 2 if problem == "binary_classifier" else int(labels.max()) + 1
        return labels, num_classes

    def _booster_params(self, num_classes: int | None) -> dict[str, Any]:
        skip = {"num_round", "num_class", "eval_metric", "early_stopping_rounds", "nthread"}
        if self.problem_type() != "binary_classifier":
            skip.add("scale_pos_weight")  # XGBoost warns that other objectives ignore it
        params = {k: v for k, v in self.params.items() if k not in skip}
        params["eval_metric"] = self._eval_metrics()
        params["nthread"] = resolve_threads(self.params["nthread"])
        params["seed"] = self.seed
        params["verbosity"] = 1
        if self.problem_type() == "multiclass_classifier":
            params["num_class"] = num_classes
        return params

    def fit(
        self,
        train: DataSource,
        validation: DataSource | None,
        callbacks: TrainingCallbacks,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Train with ``xgboost.train``, logging every eval metric at every round.

        With a ``checkpoint``, the booster and the early-stopping state are saved
        whenever it is due, and a run that finds one continues from it for the rounds
        still to do (steps of its metrics continue too).

        Raises:
            InvalidInput: unusable features or labels, early stopping without a
                validation channel, or a checkpoint that does not fit this run.
            AlgorithmError: XGBoost failed for another reason.
        """
        xgb = require("xgboost", self.name, "xgboost")
        rounds = self.params["early_stopping_rounds"]
        if rounds is not None and validation is None:
            raise InvalidInput(
                "xgboost's early_stopping_rounds watches the validation metric, but there is "
                "no validation channel. Add one, or drop early_stopping_rounds."
            )
        data = train.load()
        X = as_features(
            data.X, algorithm=self.name, sparse_ok=True, allow_missing=True, keep_float32=True
        )
        y, num_classes = self._labels(data.y, "train", self.params["num_class"])
        self.feature_names = list(data.feature_names) or [f"f{i}" for i in range(X.shape[1])]
        threads = resolve_threads(self.params["nthread"])
        dtrain = xgb.DMatrix(X, label=y, nthread=threads)
        sample = self._train_metric_matrix(xgb, X, y, threads)
        evals = [(dtrain if sample is None else sample, "train")]
        if validation is not None:
            vdata = validation.load()
            Xv = as_features(
                vdata.X, algorithm=self.name, sparse_ok=True, allow_missing=True, keep_float32=True
            )
            self.check_features(Xv)
            yv, _ = self._labels(vdata.y, "validation", num_classes)
            evals.append((xgb.DMatrix(Xv, label=yv, nthread=threads), "validation"))
        folder = resume = None
        if checkpoint is not None:
            folder = CheckpointFolder(
                checkpoint,
                self,
                features=X.shape[1],
                rows=X.shape[0],
                unit="round",
                total="num_round",
                may_change=_MAY_CHANGE_ON_RESUME,
                logger=callbacks.logger,
            )
            resume = folder.resume()
        start = 0 if resume is None else resume.iteration
        metric = self._eval_metrics()[-1]
        stopper = None
        if rounds is not None:
            saved = None if resume is None else resume.state.get("early_stopping")
            stopper = EarlyStopping(rounds, _METRICS[metric][0] == "Maximize", saved)
        hook = _round_hook(
            xgb, callbacks, start=start, metric=metric, stopper=stopper, folder=folder
        )
        try:
            booster = xgb.train(
                self._booster_params(num_classes),
                dtrain,
                num_boost_round=self.params["num_round"] - start,
                evals=evals,
                callbacks=[hook],
                verbose_eval=False,
                xgb_model=None
                if resume is None
                else bytearray((resume.folder / MODEL_FILE).read_bytes()),
            )
        except xgb.core.XGBoostError as exc:
            raise AlgorithmError(f"XGBoost failed to train: {_message(exc)}") from exc
        if rounds is not None:
            callbacks.logger.info(
                "xgboost kept %d of %d rounds (best validation %s).",
                booster.num_boosted_rounds(),
                self.params["num_round"],
                metric,
            )
        self._booster = booster
        self._num_classes = num_classes

    def resume_caveat(self) -> str | None:
        """Subsampled rows or columns: their random draws restart at the checkpoint."""
        sampled = [f"{k}={self.params[k]:g}" for k in _SAMPLING if self.params[k] < 1]
        if not sampled:
            return None
        return (
            f"{', '.join(sampled)} draw from XGBoost's random generator, whose state is not "
            "in the model file, so the rounds after a checkpoint draw other samples"
        )

    # ------------------------------------------------------------------ prediction
    def _model(self) -> Any:
        if self._booster is None:
            raise InvalidInput("This xgboost model is not trained: call fit() or load() first.")
        return self._booster

    def set_prediction_threads(self, threads: int) -> None:
        """Predict on ``threads`` threads (a serving worker uses 1; default: every core).

        Raises:
            InvalidInput: not an integer >= 1, or the model is not trained.
        """
        self._predict_threads = check_thread_count(threads, self.name)
        self._model().set_param({"nthread": self._predict_threads})

    def predict(self, X: Any) -> Prediction:
        """Probabilities and labels for classifiers, values for regressors.

        Raises:
            InvalidInput: features that are not numbers, or a different number of them.
        """
        booster = self._model()
        if not _checked_rows(X):
            X = as_features(
                X, algorithm=self.name, sparse_ok=True, allow_missing=True, keep_float32=True
            )
        self.check_features(X)
        objective = self.params["objective"]
        problem = self.problem_type()
        if problem == "multiclass_classifier":
            if objective == "multi:softprob":
                return multiclass_prediction(self._inplace_predict(booster, X))
            # multi:softmax predicts a class index; its margins give the probabilities.
            margins = self._inplace_predict(booster, X, margin=True)
            return multiclass_prediction(softmax(np.asarray(margins, dtype=np.float64)))
        if objective == "binary:logitraw":
            margin = np.asarray(self._inplace_predict(booster, X), dtype=np.float64)
            return binary_prediction(np.exp(-np.logaddexp(0.0, -margin)))
        if problem == "binary_classifier":
            return binary_prediction(self._inplace_predict(booster, X))
        return regression_prediction(self._inplace_predict(booster, X))

    def _inplace_predict(self, booster: Any, X: Any, *, margin: bool = False) -> np.ndarray:
        """``booster.inplace_predict(X)`` (with ``predict_type="margin"`` for ``margin``):
        through :class:`_DensePredictor` for the dense rows it takes, once it has checked
        itself against this booster; through XGBoost's Python wrapper otherwise."""
        dense = self._dense
        if dense is None or dense.booster is not booster:
            dense = self._dense = _DensePredictor(booster, len(self.feature_names))
        if dense.usable and dense.takes(X):
            return dense.predict(X, margin=margin)
        return booster.inplace_predict(X, predict_type="margin" if margin else "value")

    def evaluate(self, data: DataSource, channel: str = "test") -> dict[str, float]:
        """The eval metrics of the trained model on a labelled channel (``test:auc``...).

        XGBoost computes them itself, so they match the ``validation:`` series.

        Raises:
            InvalidInput: unusable features or labels.
        """
        xgb = require("xgboost", self.name, "xgboost")
        booster = self._model()
        loaded = data.load()
        X = as_features(
            loaded.X, algorithm=self.name, sparse_ok=True, allow_missing=True, keep_float32=True
        )
        self.check_features(X)
        y, _ = self._labels(loaded.y, channel, self._num_classes)
        text = booster.eval_set([(xgb.DMatrix(X, label=y), channel)])
        out: dict[str, float] = {}
        for field in str(text).split("\t")[1:]:
            key, _, value = field.partition(":")
            out[f"{channel}:{key.removeprefix(channel + '-')}"] = float(value)
        return out

    def feature_importance(self) -> dict[str, float] | None:
        """Total gain of the splits on each feature (0 for features never used)."""
        scores = self._model().get_score(importance_type="total_gain")
        return {name: float(scores.get(f"f{i}", 0.0)) for i, name in enumerate(self.feature_names)}

    # ------------------------------------------------------------------ artifacts
    def save(self, directory: Path) -> None:
        """Write ``model.ubj`` (XGBoost's UBJSON) and ``sagelab-model.json``.

        Raises:
            InvalidInput: the model is not trained.
        """
        xgb = require("xgboost", self.name, "xgboost")
        booster = self._model()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(directory / MODEL_FILE))
        write_metadata(
            directory,
            self,
            problem_type=self.problem_type(),
            num_classes=self._num_classes,
            files=[MODEL_FILE],
            versions={"xgboost": xgb.__version__},
            extra={"num_boosted_rounds": int(booster.num_boosted_rounds())},
        )

    @classmethod
    def load(cls, directory: Path) -> XGBoostAlgorithm:
        """Read a model written by :meth:`save`; the UBJSON file holds no code.

        Raises:
            NotFound: no model in ``directory``.
            InvalidInput: the files are not an xgboost model saved by sagelab.
        """
        xgb = require("xgboost", cls.name, "xgboost")
        directory = Path(directory)
        meta = read_metadata(directory, cls.name, [MODEL_FILE])
        instance = restore(cls, meta)
        path = directory / MODEL_FILE
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise InvalidInput(f"{str(path)!r} is not an XGBoost model: {_message(exc)}") from None
        instance._booster = booster
        num_classes = meta.get("num_classes")
        instance._num_classes = int(num_classes) if isinstance(num_classes, int) else None
        return instance


#: Feature types that ``as_features`` hands back as they are (with ``keep_float32``) and
#: that XGBoost reads without converting them in Python.
_DENSE_TYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _checked_rows(X: Any) -> bool:
    """Whether ``as_features`` would accept ``X`` and return it unchanged: a 2-D float64
    (or float32) NumPy array with rows and no infinite value.

    One sum answers the last question for rows of finite numbers, the rows an endpoint
    sends (its codec has refused NaN and infinities already): the sum is finite exactly
    when every value is, unless finite values overflow it. Rows with missing values (NaN),
    infinities or such large numbers go through ``as_features``, which accepts or refuses
    them as it always has.
    """
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.shape[0] > 0
        and X.dtype in _DENSE_TYPES
        and math.isfinite(X.sum())
    )


class _DensePredictor:
    """``Booster.inplace_predict`` for dense rows, without its Python wrapper.

    It calls the C function the wrapper calls for NumPy arrays,
    ``XGBoosterPredictFromDense`` (XGBoost's documented C API), with the same
    arguments, and copies the answer out as the wrapper does. What it skips is the
    wrapper's per-call work: sniffing the input's type against a dozen data frame
    libraries, two JSON encodings, a second C call to count the model's features, and a
    class built anew to read the answer. For one row of a 100-tree model that work is
    about 45 % of the call (410,000 of 910,000 instructions, by callgrind), and a
    real-time endpoint pays it on every request.

    The library handle it needs is not public Python API (``xgboost.core._LIB``), so it
    is used only after it has given, on a probe of two rows, exactly what
    ``inplace_predict`` gives (values, type and shape, for values and margins), and only
    when the caller has checked the feature count (XGBoost's wrapper checks it itself):
    otherwise, or with another XGBoost whose internals differ, :attr:`usable` is False
    and predictions go through the wrapper as before.

    Args:
        booster: the model, an ``xgboost.Booster``.
        num_features: the features the model was trained on (0 when unknown: not used).
    """

    def __init__(self, booster: Any, num_features: int) -> None:
        self.booster = booster
        self.usable = False
        try:
            from xgboost import core

            self._call = core._LIB.XGBoosterPredictFromDense
            self._check_call = core._check_call
            self._ulong = core.c_bst_ulong
            # The arguments the wrapper sends for predict_type "value" and "margin".
            self._config = {
                margin: core.make_jcargs(
                    type=1 if margin else 0,
                    training=False,
                    iteration_begin=0,
                    iteration_end=0,
                    missing=np.nan,
                    strict_shape=False,
                    cache_id=0,
                )
                for margin in (False, True)
            }
            if not num_features or booster.num_features() != num_features:
                return
            probe = np.linspace(-1.0, 1.0, 2 * num_features).reshape(2, num_features)
            for margin in (False, True):
                expected = booster.inplace_predict(
                    probe, predict_type="margin" if margin else "value"
                )
                got = self.predict(probe, margin=margin)
                if got.dtype != expected.dtype or not np.array_equal(got, expected):
                    return
        except Exception:  # any surprise: keep XGBoost's own wrapper
            return
        self.usable = True

    def takes(self, X: Any) -> bool:
        """Whether ``X`` is rows this path reads: a 2-D, C-ordered, aligned float64 or
        float32 NumPy array (what an endpoint's codec makes)."""
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _DENSE_TYPES
            and X.flags.c_contiguous
            and X.flags.aligned
        )

    def predict(self, X: np.ndarray, *, margin: bool = False) -> np.ndarray:
        """What ``booster.inplace_predict(X)`` returns (``float32``, shaped by XGBoost).

        Raises:
            xgboost.core.XGBoostError: XGBoost refused the call, as through the wrapper.
        """
        rows, columns = X.shape
        interface = (
            f'{{"data":[{X.ctypes.data},false],"shape":[{rows},{columns}],'
            f'"strides":null,"typestr":"{X.dtype.str}","version":3}}'
        ).encode()
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        out = ctypes.POINTER(ctypes.c_float)()
        self._check_call(
            self._call(
                self.booster.handle,
                interface,
                self._config[margin],
                None,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(out),
            )
        )
        answer_shape = tuple(shape[: dims.value])
        size = math.prod(answer_shape)
        if not size:
            return np.empty(answer_shape, dtype=np.float32)
        # XGBoost owns the buffer (it is reused by the next call): copy it out.
        answer = np.frombuffer(ctypes.string_at(out, 4 * size), dtype=np.float32)
        return answer.reshape(answer_shape).copy()


def _round_hook(
    xgb: Any,
    callbacks: TrainingCallbacks,
    *,
    start: int,
    metric: str,
    stopper: EarlyStopping | None,
    folder: CheckpointFolder | None,
) -> Any:
    """An XGBoost callback for each round: log its metrics, stop early, checkpoint, honour stops.

    Rounds are counted over the whole run: a run resumed at round ``start`` logs its
    first round as step ``start``. Early stopping follows ``xgboost.callback.EarlyStopping``
    (the last eval metric on validation, keeping the best rounds), with its state kept in
    checkpoints.
    """

    class _Hook(xgb.callback.TrainingCallback):
        def before_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            # Resumed from a checkpoint taken as early stopping decided: nothing to add.
            return stopper is not None and stopper.should_stop

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            done = start + epoch + 1
            for data_name, series in evals_log.items():
                for name, values in series.items():
                    callbacks.log_metric(f"{data_name}:{name}", float(values[-1]), step=done - 1)
            if stopper is not None:
                score = float(evals_log["validation"][metric][-1])
                if stopper.update(score, done - 1):
                    model.set_attr(best_score=str(score), best_iteration=str(done - 1))
            if folder is not None and folder.due(done):

                def write(path: Path) -> None:
                    (path / MODEL_FILE).write_bytes(bytes(model.save_raw("ubj")))

                state = {"early_stopping": None if stopper is None else stopper.state()}
                folder.save(done, state, write)
            callbacks.check_stop()
            return stopper is not None and stopper.should_stop

        def after_training(self, model: Any) -> Any:
            if stopper is None or stopper.best_iteration is None:
                return model
            best, score = stopper.best_iteration, stopper.best_score
            model = model[: best + 1]
            model.best_iteration = best
            model.best_score = score
            return model

    return _Hook()


def _message(exc: Exception) -> str:
    """XGBoost's message without its time stamp and source location."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return re.sub(r"^\[[\d:]+\]\s+\S+:\d+:\s*", "", first)
