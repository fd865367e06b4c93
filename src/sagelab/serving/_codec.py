"""Request bodies to feature rows, and predictions to response bodies, as SageMaker's
built-in algorithms take and give them.

Content types in: ``text/csv`` (rows of numbers, no header, no label: SageMaker's
convention), ``application/json`` (``{"instances": [[...], ...]}``, ``{"instances":
[{"features": [...]}]}``, ``{"features": [...]}``, a list of rows or a single row;
rows may be objects keyed by feature name when the model knows its features by
name) and ``application/jsonlines`` (one such row per line). Out, by ``Accept``:
``text/csv`` (one line per row), ``application/json`` (``{"predictions": [...]}``)
and ``application/jsonlines``. JSON is strict both ways: ``NaN`` and ``Infinity``
are refused in requests and never written in responses.

Every refusal is a :class:`BadRequest` with the HTTP status to answer (400, 406 or
415) and a message that names the row and column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from sagelab.algorithms import Prediction
from sagelab.errors import InvalidInput

__all__ = [
    "ACCEPT_TYPES",
    "CONTENT_TYPES",
    "BadRequest",
    "csv_lines",
    "decode_rows",
    "encode_prediction",
    "media_type",
    "negotiate",
]

CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"
#: What requests may carry.
CONTENT_TYPES = (CSV, JSON, JSONLINES)
#: What responses may be.
ACCEPT_TYPES = (CSV, JSON, JSONLINES)
_ALIASES = {"application/x-jsonlines": JSONLINES, "application/jsonl": JSONLINES}
#: Value types whose ``item()`` is a Python float, as ``tolist()`` gives them.
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


class BadRequest(InvalidInput):
    """A request the server refuses, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type header (``text/csv; charset=utf-8`` → ``text/csv``)."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(kind, kind)


def negotiate(accept: str | None, content_type: str) -> str:
    """The response type for an ``Accept`` header: the first it lists that we can give.

    No header, or ``*/*``, answers in the request's own type.

    Raises:
        BadRequest: 406 when nothing listed can be given.
    """
    if not accept:
        return content_type
    for part in accept.split(","):
        kind = media_type(part)
        if kind in ("*/*", ""):
            return content_type
        if kind in ACCEPT_TYPES:
            return kind
    raise BadRequest(
        f"Cannot answer in {accept!r}; the Accept header may ask for {', '.join(ACCEPT_TYPES)}.",
        406,
    )


def decode_rows(
    body: bytes, content_type: str, num_features: int, feature_names: Sequence[str] | None
) -> np.ndarray:
    """The rows of features a request carries, as a ``float64`` array (rows × features).

    Args:
        body: the request body.
        content_type: its bare media type (:func:`media_type`).
        num_features: how many features the model takes.
        feature_names: the model's feature names when it knows them by name (JSON objects
            are then read by name), else None.

    Raises:
        BadRequest: 415 for a type we do not read; 400 for a body that is not valid in its
            type, has no rows, a row of the wrong length, a value that is not a finite
            number; each message names the row (and column) counting from 1.
    """
    if content_type == CSV:
        return _csv_rows(body, num_features)
    if content_type == JSON:
        return _rows_array(
            _json_rows(_load_json(body, "The JSON body")), num_features, feature_names
        )
    if content_type == JSONLINES:
        rows: list[Any] = []
        for i, line in enumerate(_text(body).splitlines(), start=1):
            if line.strip():
                rows.append(_json_row(_load_json(line, f"Line {i} of the JSON lines body")))
        return _rows_array(rows, num_features, feature_names)
    raise BadRequest(
        f"Cannot read a body of type {content_type or '(none)'!r}; send one of "
        f"{', '.join(CONTENT_TYPES)} and say which in the Content-Type header.",
        415,
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The body is not UTF-8 text (byte {exc.start}).") from None


def _csv_rows(body: bytes, num_features: int) -> np.ndarray:
    text = _text(body)
    row = _one_csv_row(text, num_features)
    return row if row is not None else _csv_table(text, num_features)


def _csv_table(text: str, num_features: int) -> np.ndarray:
    """Any number of CSV rows (blank lines skipped), each checked and refused by name."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise BadRequest("The CSV body has no rows.")
    X = np.empty((len(lines), num_features), dtype=np.float64)
    for r, line in enumerate(lines):
        fields = line.split(",")
        if len(fields) != num_features:
            raise BadRequest(
                f"Row {r + 1} of the CSV body has {len(fields)} value(s); the model takes "
                f"{num_features} features (no header, no label column)."
            )
        try:
            X[r] = fields
        except ValueError:
            c = next(i for i, f in enumerate(fields) if not _is_number(f))
            raise BadRequest(
                f"Row {r + 1}, column {c + 1} of the CSV body is {fields[c].strip()[:40]!r}, "
                "not a number."
            ) from None
    _check_finite(X)
    return X


def _one_csv_row(text: str, num_features: int) -> np.ndarray | None:
    """The usual real-time request, one line of finite numbers, read with less work than
    :func:`_csv_table`; None for anything else, which :func:`_csv_table` then reads or
    refuses with its message (so this path never answers differently).

    ``float`` parses each field as the general path's NumPy assignment does (NumPy calls
    it), so the values are the same. The sum of the row is finite exactly when every value
    is, except when finite values overflow it: those rows go the general way too.
    """
    # Several rows: leave at the first line break, without reading the rest of the body
    # (a last line break, "\n" or "\r\n", ends the one row).
    if text.find("\n", 0, len(text) - 2) != -1:
        return None
    lines = text.splitlines()
    if len(lines) != 1:
        return None
    fields = lines[0].split(",")
    if len(fields) != num_features:
        return None
    try:
        values = list(map(float, fields))
    except ValueError:
        return None
    if not math.isfinite(sum(values)):
        return None
    return np.array([values], dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"The JSON body holds {name}; JSON numbers must be finite.")


def _load_json(text: bytes | str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except BadRequest:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}.") from None


def _json_rows(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        if "instances" in doc:
            instances = doc["instances"]
            if not isinstance(instances, list):
                raise BadRequest('"instances" must be a list of rows.')
            return [_json_row(x) for x in instances]
        return [_json_row(doc)]
    if isinstance(doc, list):
        if doc and all(isinstance(x, (list, dict)) for x in doc):
            return [_json_row(x) for x in doc]
        return [doc]
    raise BadRequest(
        'The JSON body must be {"instances": [[...], ...]}, {"features": [...]}, or a list '
        f"of rows; got a {type(doc).__name__}."
    )


def _json_row(row: Any) -> Any:
    if isinstance(row, dict) and "features" in row:
        return row["features"]
    return row


def _rows_array(
    rows: list[Any], num_features: int, feature_names: Sequence[str] | None
) -> np.ndarray:
    if not rows:
        raise BadRequest("The body has no rows.")
    X = np.empty((len(rows), num_features), dtype=np.float64)
    for r, row in enumerate(rows):
        if isinstance(row, dict):
            row = _by_name(row, r, feature_names)
        if not isinstance(row, list):
            raise BadRequest(
                f"Row {r + 1} is a {type(row).__name__}; a row is a list of numbers"
                + (" or an object keyed by feature name." if feature_names else ".")
            )
        if len(row) != num_features:
            raise BadRequest(
                f"Row {r + 1} has {len(row)} value(s); the model takes {num_features} features."
            )
        for c, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadRequest(
                    f"Row {r + 1}, feature {c + 1} is {json.dumps(value)[:40]}, not a number."
                )
        X[r] = row
    _check_finite(X)
    return X


def _by_name(row: dict[str, Any], r: int, feature_names: Sequence[str] | None) -> list[Any]:
    if not feature_names:
        raise BadRequest(
            f"Row {r + 1} is an object, but the model knows its features by position only; "
            "send a list of numbers in the training column order."
        )
    missing = [n for n in feature_names if n not in row]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        raise BadRequest(f"Row {r + 1} lacks {len(missing)} feature(s): {shown}.")
    return [row[n] for n in feature_names]


def _check_finite(X: np.ndarray) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise BadRequest(
            f"Row {r + 1}, feature {c + 1} is {X[r, c]!r}; features must be finite numbers "
            "(no NaN or Infinity)."
        )


def encode_prediction(prediction: Prediction, accept: str) -> bytes:
    """A response body in ``accept`` (one of :data:`ACCEPT_TYPES`).

    CSV gives one line per row, as SageMaker's XGBoost does: the value (the positive
    class's probability, the regression value, the cluster, the anomaly score), or the
    class probabilities side by side for a multiclass model; JSON gives each row's
    record (``score``, ``predicted_label``, ``probabilities``, ...).

    Raises:
        ValueError: a prediction that is not a finite number (a model error: the server
            answers 500 rather than write invalid JSON).
    """
    if accept == CSV:
        one = _one_csv_value(prediction)
        if one is not None:
            return one
        array = np.asarray(
            prediction.probabilities if prediction.probabilities is not None else prediction.values
        )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError("the model predicted a value that is not a finite number")
        if array.dtype.kind == "f" and array.ndim in (1, 2):
            return csv_lines(array) + b"\n"
        if array.ndim == 2:
            lines = [",".join(_csv_value(v) for v in row) for row in array.tolist()]
        else:
            lines = [_csv_value(v) for v in array.tolist()]
        return ("\n".join(lines) + "\n").encode()
    records = prediction.records()
    if accept == JSONLINES:
        return "".join(_dumps(r) + "\n" for r in records).encode()
    return _dumps({"predictions": records}).encode()


def _one_csv_value(prediction: Prediction) -> bytes | None:
    """The CSV answer to the usual real-time request, one row with one finite value, with
    less work than the general path (and the same bytes); None for anything else."""
    values = prediction.values
    if (
        prediction.probabilities is not None
        or not isinstance(values, np.ndarray)
        or values.shape != (1,)
        or values.dtype not in _FLOATS
    ):
        return None
    value = values.item()
    if not math.isfinite(value):
        return None  # the general path refuses it
    return (repr(value) + "\n").encode()


#: Magnitudes ``repr`` writes in scientific notation: below 1e-4 (zero aside), from 1e16.
_SCIENTIFIC_BELOW, _SCIENTIFIC_FROM = 1e-4, 1e16


def csv_lines(array: np.ndarray) -> bytes:
    """A finite float array (rows, or rows × fields) as CSV lines without the last line end,
    every value written as ``repr`` writes it.

    ``repr`` one value at a time costs about 0.5 µs a value, as much as predicting it.
    orjson writes a whole float64 array in C (Ryu's shortest round-trip digits), about
    ten times faster, with the same digits as ``repr`` (both give the shortest string
    that reads back as the same double, the closest one when several are as short). Only
    its notation differs, for the magnitudes ``repr`` writes in scientific notation, so
    those few values are written by ``repr``.
    """
    values = np.ascontiguousarray(array, dtype=np.float64)
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    matrix = values.ndim == 2
    body = text[2:-2].replace(b"],[", b"\n") if matrix else text[1:-1].replace(b",", b"\n")
    magnitude = np.abs(values).ravel()
    odd = np.flatnonzero(
        ((magnitude < _SCIENTIFIC_BELOW) & (magnitude > 0)) | (magnitude >= _SCIENTIFIC_FROM)
    )
    if len(odd) == 0:
        return body
    tokens = body.replace(b"\n", b",").split(b",")
    flat = values.ravel()
    for i in odd.tolist():
        tokens[i] = repr(float(flat[i])).encode()
    if not matrix:
        return b"\n".join(tokens)
    width = values.shape[1]
    return b"\n".join(b",".join(tokens[i : i + width]) for i in range(0, len(tokens), width))


def _csv_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
