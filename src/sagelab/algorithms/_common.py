"""What the built-in algorithms share: optional imports, input checks, labels, the metadata file.

Every check here speaks to the user (what was expected, what was got, how to fix
it) because it is the first thing a training job or an endpoint runs on their data.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

import numpy as np

from sagelab._version import __version__
from sagelab.algorithms._base import Algorithm, MetricDefinition, Prediction
from sagelab.algorithms._hyperparameters import HyperparameterError
from sagelab.errors import InvalidInput, NotFound

__all__ = [
    "METADATA_FILE",
    "all_cores",
    "as_features",
    "binary_prediction",
    "check_thread_count",
    "class_labels",
    "declare_metrics",
    "is_sparse",
    "load_npy",
    "multiclass_prediction",
    "read_metadata",
    "regression_labels",
    "regression_prediction",
    "require",
    "require_two_classes",
    "resolve_threads",
    "restore",
    "save_npy",
    "softmax",
    "validate_more",
    "write_metadata",
]

#: The file every saved model carries next to its weights; written last, so a
#: directory without it holds no finished model.
METADATA_FILE = "sagelab-model.json"
_FORMAT_VERSION = 1

A = TypeVar("A", bound=Algorithm)


# ---------------------------------------------------------------------- optional packages
def require(module: str, algorithm: str, package: str) -> ModuleType:
    """Import an optional package on first use, so listing algorithms stays light.

    Raises:
        ImportError: the package is missing; the message says how to install it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"The {algorithm} algorithm needs {package}, which is not installed: "
            f"pip install 'sagelab[algorithms]' (or pip install {package})."
        ) from exc


def all_cores() -> int:
    """The cores this process may run on (fewer than the machine's under a CPU affinity mask)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_threads(value: int | None) -> int:
    """A thread count given as a hyperparameter, or every core when it is not."""
    return all_cores() if value is None else int(value)


def check_thread_count(threads: int, algorithm: str) -> int:
    """A prediction thread count, checked.

    Raises:
        InvalidInput: not an integer >= 1.
    """
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise InvalidInput(
            f"The number of prediction threads of {algorithm} must be an integer >= 1. "
            f"Got {threads!r}."
        )
    return int(threads)


# ---------------------------------------------------------------------- features
def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a SciPy sparse matrix (without importing SciPy when nobody has)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def as_features(X: Any, *, algorithm: str, sparse_ok: bool, allow_missing: bool) -> Any:
    """Rows of features as a 2-D ``float64`` array, or a CSR matrix when sparse is accepted.

    Args:
        X: an array, a list of rows, a DataFrame, or a SciPy sparse matrix.
        algorithm: the algorithm's name, for messages.
        sparse_ok: whether a sparse matrix is kept sparse (else refused).
        allow_missing: whether NaN marks a missing value the algorithm handles itself.

    Raises:
        InvalidInput: not numbers, not two-dimensional, no rows, sparse where dense is
            needed, or missing/infinite values where the algorithm cannot use them.
    """
    if is_sparse(X):
        if not sparse_ok:
            raise InvalidInput(
                f"{algorithm} does not take sparse input; densify it first (X.toarray())."
            )
        matrix = X.tocsr()
        if matrix.dtype != np.float64:
            matrix = matrix.astype(np.float64)
        values = matrix.data
    else:
        try:
            matrix = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"The features for {algorithm} must be numbers ({exc}). Encode text and "
                "categorical columns as numbers first, and leave the label out."
            ) from None
        if matrix.ndim != 2:
            raise InvalidInput(
                f"The features for {algorithm} must be a 2-D table of rows × features; got "
                f"{matrix.ndim} dimension(s) with shape {matrix.shape}. For a single row use "
                "[row] or X.reshape(1, -1)."
            )
        values = matrix
    if matrix.shape[0] == 0:
        raise InvalidInput(f"There are no rows of features for {algorithm}.")
    bad = ~np.isfinite(values) if not allow_missing else np.isinf(values)
    if bad.any():
        what = "missing (NaN) or infinite" if not allow_missing else "infinite"
        where = ""
        if not is_sparse(matrix):
            row, col = np.argwhere(bad)[0]
            where = f", the first at row {row}, column {col} (counting from 0)"
        raise InvalidInput(
            f"{algorithm} cannot use {what} feature values; found {int(bad.sum())}{where}. "
            "Fill or drop them first."
        )
    return matrix


# ---------------------------------------------------------------------- labels
def _label_values(y: Any, algorithm: str, what: str, offset: int, rule: str) -> np.ndarray:
    if y is None:
        raise InvalidInput(
            f"{algorithm} needs labels to train: the {what} channel has features only. Put "
            "the label in the first column (as SageMaker's CSV input does) or name it."
        )
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInput(
            f"The {what} labels for {algorithm} must be one value per row; got shape {arr.shape}."
        )
    if arr.dtype.kind == "b":
        return arr.astype(np.float64)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64, copy=False)
    for i, value in enumerate(arr.tolist()):
        try:
            float(value)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"The {what} labels for {algorithm} must be {rule}; got {value!r} at row "
                f"{offset + i} (counting from 0). Encode them first: classes as 0..k-1 "
                "(pandas.factorize, scikit-learn's LabelEncoder), targets as numbers."
            ) from None
    return arr.astype(np.float64)


def _first(mask: np.ndarray, offset: int) -> str:
    return f"row {offset + int(np.argmax(mask))} (counting from 0)"


def _check_present(values: np.ndarray, algorithm: str, what: str, offset: int) -> None:
    missing = np.isnan(values)
    if missing.any():
        raise InvalidInput(
            f"{int(missing.sum())} {what} label(s) for {algorithm} are missing (NaN), the first "
            f"at {_first(missing, offset)}. Drop those rows or fill in their labels."
        )


def class_labels(
    y: Any,
    *,
    algorithm: str,
    problem_type: str,
    num_classes: int | None = None,
    what: str = "train",
    offset: int = 0,
) -> np.ndarray:
    """Classifier labels as ``int64`` classes 0..k-1, refusing anything else.

    SageMaker's built-in classifiers read classes as the integers 0..k-1 and so do
    these: mapping other labels silently would make the predicted labels mean
    something the user cannot see.

    Args:
        y: the labels of one channel (or one batch of it).
        algorithm: the algorithm's name, for messages.
        problem_type: ``binary_classifier`` or ``multiclass_classifier``.
        num_classes: the known number of classes, if any; labels must be below it.
        what: the channel, for messages.
        offset: the row number of the first label, for messages about batches.

    Raises:
        InvalidInput: no labels, labels that are not numbers, missing ones, or
            numbers that are not classes 0..k-1.
    """
    if problem_type == "binary_classifier":
        rule = "0 or 1 for a binary classifier"
    else:
        k = "k" if num_classes is None else str(num_classes)
        rule = f"integers 0..{k}-1 for a multiclass classifier"
    values = _label_values(y, algorithm, what, offset, rule)
    _check_present(values, algorithm, what, offset)
    if problem_type == "binary_classifier":
        bad = (values != 0) & (values != 1)
    else:
        bad = (values < 0) | (values != np.floor(values)) | ~np.isfinite(values)
        if num_classes is not None:
            bad |= values >= num_classes
    if bad.any():
        example = values[bad][0]
        shown = int(example) if np.isfinite(example) and example == int(example) else example
        raise InvalidInput(
            f"The {what} labels for {algorithm} must be {rule}; got {shown!r} at "
            f"{_first(bad, offset)}. Encode the classes as 0..k-1 first (pandas.factorize, "
            "scikit-learn's LabelEncoder) and keep the mapping to read predictions back."
        )
    return values.astype(np.int64)


def require_two_classes(counts: np.ndarray, algorithm: str) -> None:
    """Refuse training a classifier on labels of a single class.

    Raises:
        InvalidInput: naming the one class present.
    """
    present = np.flatnonzero(counts)
    if present.size < 2:
        only = int(present[0]) if present.size else "none"
        raise InvalidInput(
            f"The train labels for {algorithm} hold a single class ({only}); a classifier needs "
            "examples of at least two. Check the label column, or train a regressor instead."
        )


def regression_labels(
    y: Any,
    *,
    algorithm: str,
    what: str = "train",
    offset: int = 0,
    low: float | None = None,
    low_open: bool = False,
    objective: str = "",
) -> np.ndarray:
    """Regression targets as finite ``float64`` numbers, optionally bounded below.

    Raises:
        InvalidInput: no labels, labels that are not numbers, missing or infinite ones,
            or values below what the objective accepts.
    """
    values = _label_values(y, algorithm, what, offset, "numbers for a regressor")
    _check_present(values, algorithm, what, offset)
    infinite = np.isinf(values)
    if infinite.any():
        raise InvalidInput(
            f"The {what} labels for {algorithm} must be finite; got {values[infinite][0]} at "
            f"{_first(infinite, offset)}."
        )
    if low is not None:
        bad = values <= low if low_open else values < low
        if bad.any():
            sign = ">" if low_open else ">="
            raise InvalidInput(
                f"The objective {objective!r} of {algorithm} needs {what} labels {sign} {low:g}; "
                f"got {values[bad][0]:g} at {_first(bad, offset)}. Choose another objective "
                "or transform the target."
            )
    return values


# ---------------------------------------------------------------------- predictions
def softmax(margins: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large margins do not overflow."""
    shifted = margins - margins.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def binary_prediction(probability: np.ndarray) -> Prediction:
    """``values`` = probability of class 1, ``labels`` = 1 above 0.5."""
    p = np.asarray(probability, dtype=np.float64).reshape(-1)
    return Prediction(values=p, labels=(p > 0.5).astype(np.int64))


def multiclass_prediction(probabilities: np.ndarray) -> Prediction:
    """``probabilities`` per class, ``labels`` = the most probable, ``values`` = its probability."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.argmax(p, axis=1).astype(np.int64)
    return Prediction(values=p[np.arange(p.shape[0]), labels], labels=labels, probabilities=p)


def regression_prediction(values: np.ndarray) -> Prediction:
    """``values`` = the predicted target."""
    return Prediction(values=np.asarray(values, dtype=np.float64).reshape(-1))


# ---------------------------------------------------------------------- declarations
def declare_metrics(
    names: Mapping[str, Literal["Maximize", "Minimize"]],
    helps: Mapping[str, str],
    channels: Sequence[str] = ("train", "validation"),
) -> tuple[MetricDefinition, ...]:
    """``channel:name`` definitions for every channel and metric."""
    return tuple(
        MetricDefinition(
            f"{channel}:{name}", direction, f"{helps.get(name, name)} ({channel} data)"
        )
        for channel in channels
        for name, direction in names.items()
    )


def validate_more(
    algorithm: str,
    base_init: Callable[[], None],
    value_problems: list[str],
    relation_problems: Callable[[], list[str]],
) -> None:
    """Run the contract's validation plus an algorithm's own checks, as one error.

    ``value_problems`` are checks of single raw values (a list's items) that the
    declarations cannot express; they are reported with the contract's problems.
    ``relation_problems`` compares valid values with each other, so it runs only
    once every value is valid (else one mistake would be reported twice).

    Raises:
        HyperparameterError: one message per problem.
    """
    try:
        base_init()
    except HyperparameterError as exc:
        raise HyperparameterError(algorithm, [*exc.problems, *value_problems]) from None
    problems = [*value_problems, *relation_problems()]
    if problems:
        raise HyperparameterError(algorithm, problems)


# ---------------------------------------------------------------------- artifacts
def write_metadata(
    directory: Path,
    algorithm: Algorithm,
    *,
    problem_type: str,
    num_classes: int | None,
    files: Sequence[str],
    versions: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``sagelab-model.json``: what :func:`restore` needs, and what a person wants to know."""
    meta = {
        "format_version": _FORMAT_VERSION,
        "algorithm": algorithm.name,
        "problem_type": problem_type,
        "num_classes": num_classes,
        "hyperparameters": {k: v for k, v in algorithm.params.items() if v is not None},
        "seed": algorithm.seed,
        "feature_names": list(algorithm.feature_names),
        # Checked before a native library parses a file: LightGBM aborts the whole
        # process on some truncated model files instead of raising.
        "sha256": {name: _sha256(Path(directory) / name) for name in files},
        "versions": {"sagelab": __version__, "numpy": np.__version__, **versions},
        **(extra or {}),
    }
    path = Path(directory) / METADATA_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(directory: Path, algorithm: str, files: Sequence[str]) -> dict[str, Any]:
    """Read and check ``sagelab-model.json`` of a model saved by ``algorithm``, and its files.

    Args:
        directory: where the model was saved.
        algorithm: the name of the algorithm that must have saved it.
        files: the model files the algorithm will read; each must exist and match the
            checksum recorded when it was saved.

    Raises:
        NotFound: the directory, its metadata file or a model file does not exist.
        InvalidInput: the metadata is not valid JSON, was written by another algorithm
            or by a newer sagelab, or a model file is damaged or was replaced.
    """
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise NotFound(
            f"There is no sagelab model in {str(directory)!r}: {METADATA_FILE} is missing. "
            "Point at the directory a model was saved to."
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"{METADATA_FILE} in {str(directory)!r} is not valid JSON: {exc}."
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("hyperparameters"), dict):
        raise InvalidInput(f"{METADATA_FILE} in {str(directory)!r} is not a sagelab model file.")
    if meta.get("algorithm") != algorithm:
        raise InvalidInput(
            f"The model in {str(directory)!r} was saved by {meta.get('algorithm')!r}, not "
            f"{algorithm!r}; load it with get_algorithm({meta.get('algorithm')!r})."
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise InvalidInput(
            f"The model in {str(directory)!r} has format version {version!r}; this sagelab "
            f"reads up to {_FORMAT_VERSION}. Upgrade sagelab to load it."
        )
    names = meta.get("feature_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"{METADATA_FILE} in {str(directory)!r} has no valid feature names.")
    sums = meta.get("sha256")
    for name in files:
        path = Path(directory) / name
        if not path.is_file():
            raise NotFound(f"The model file {str(path)!r} is missing; save the model again.")
        if not isinstance(sums, dict) or sums.get(name) != _sha256(path):
            raise InvalidInput(
                f"The model file {str(path)!r} does not match the checksum recorded when it was "
                "saved: it is damaged or was replaced. Save the model again."
            )
    return meta


def restore(cls: type[A], meta: Mapping[str, Any]) -> A:
    """A new instance with the saved hyperparameters, seed and feature names.

    Raises:
        HyperparameterError: the saved hyperparameters are not valid (an edited file).
    """
    seed = meta.get("seed", 0)
    instance = cls(meta["hyperparameters"], seed=seed if isinstance(seed, int) else 0)
    instance.feature_names = list(meta["feature_names"])
    return instance


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write a numeric array as ``.npy`` without pickles."""
    np.save(path, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)


def load_npy(path: Path) -> np.ndarray:
    """Read a numeric ``.npy`` file; refuse object arrays, which would need unpickling.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: not a numeric ``.npy`` file.
    """
    if not path.is_file():
        raise NotFound(f"The model file {str(path)!r} is missing; save the model again.")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InvalidInput(
            f"The model file {str(path)!r} is not a plain numeric array ({exc}); sagelab never "
            "unpickles model files. Save the model again with sagelab."
        ) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise InvalidInput(f"The model file {str(path)!r} is not a numeric array.")
    return np.asarray(array, dtype=np.float64)
