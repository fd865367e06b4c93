"""Request bodies for a pipeline that starts with a recipe, and answers that are not predictions.

A recipe reads named columns of numbers, text, dates and other values, so its
rows come as JSON objects keyed by column (a list of them, ``{"instances":
[...]}``, or one object), JSON lists in the recipe's input column order, JSON
lines of either, or headerless CSV in that order (an empty field is a missing
value). Each value is read as the recipe's column takes it, and a value that
cannot be is refused naming its row and column, before the recipe runs.

Answers after a ``Labels`` step are labels (with their scores when asked); after
a ``Script`` step, whatever rows the script returned, written as JSON values or
CSV fields.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from sagelab.serving._codec import CONTENT_TYPES, BadRequest

__all__ = ["decode_records", "encode_labels", "encode_values"]

CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"
#: A recipe column's kinds (``RecipeColumn.kind``).
NUMBER, STRING, DATETIME = "number", "string", "datetime"


def decode_records(
    body: bytes, content_type: str, columns: Sequence[tuple[str, str]], reader: str
) -> pa.Table:
    """The rows a request carries as a table of the recipe's input columns, in order.

    Args:
        body: the request body.
        content_type: its bare media type.
        columns: ``(name, kind)`` of each column the recipe reads, in its order.
        reader: who reads the rows, for messages ("step 1 (recipe 'churn' v2)").

    Raises:
        BadRequest: 415 for a type we do not read; 400 for a body that is not valid in
            its type, has no rows, a row of the wrong length, a missing column, or a
            value its column cannot take (each named, rows and columns from 1).
    """
    names = [name for name, _ in columns]
    if content_type == CSV:
        rows = _csv_rows(body, names, reader)
    elif content_type == JSON:
        rows = _json_rows(_load_json(_text(body), "The JSON body"), names, reader)
    elif content_type == JSONLINES:
        rows = []
        for i, line in enumerate(_text(body).splitlines(), start=1):
            if line.strip():
                rows.append(_load_json(line, f"Line {i} of the JSON lines body"))
        rows = _rows_in_order(rows, names, reader)
    else:
        raise BadRequest(
            f"Cannot read a body of type {content_type or '(none)'!r}; send one of "
            f"{', '.join(CONTENT_TYPES)} and say which in the Content-Type header.",
            415,
        )
    if not rows:
        raise BadRequest("The body has no rows.")
    arrays = [
        _array([row[c] for row in rows], name, kind, reader)
        for c, (name, kind) in enumerate(columns)
    ]
    return pa.Table.from_arrays(arrays, names=names)


# ------------------------------------------------------------------------------ reading rows
def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The body is not UTF-8 text (byte {exc.start}).") from None


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"The JSON body holds {name}; JSON numbers must be finite.")


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}.") from None


def _csv_rows(body: bytes, names: list[str], reader: str) -> list[list[Any]]:
    lines = [line for line in _text(body).splitlines() if line.strip()]
    rows: list[list[Any]] = []
    try:
        for r, fields in enumerate(csv.reader(lines)):
            if len(fields) != len(names):
                raise BadRequest(
                    f"Row {r + 1} of the CSV body has {len(fields)} value(s); {reader} reads "
                    f"{len(names)} columns, in this order: {', '.join(names)} (no header, no "
                    "label column)."
                )
            rows.append([field if field.strip() else None for field in fields])
    except csv.Error as exc:
        raise BadRequest(f"The CSV body cannot be read: {exc}.") from None
    return rows


def _json_rows(doc: Any, names: list[str], reader: str) -> list[list[Any]]:
    if isinstance(doc, dict):
        if "instances" in doc and "instances" not in names:
            instances = doc["instances"]
            if not isinstance(instances, list):
                raise BadRequest('"instances" must be a list of rows.')
            return _rows_in_order(instances, names, reader)
        return _rows_in_order([doc], names, reader)
    if isinstance(doc, list):
        if all(isinstance(x, (list, dict)) for x in doc):  # [] too: no rows
            return _rows_in_order(doc, names, reader)
        return _rows_in_order([doc], names, reader)
    raise BadRequest(
        'The JSON body must be a list of rows, {"instances": [...]} or one row, each row an '
        f"object keyed by column; got a {type(doc).__name__}."
    )


def _rows_in_order(rows: list[Any], names: list[str], reader: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for r, row in enumerate(rows):
        if isinstance(row, dict):
            try:
                out.append([row[n] for n in names])
            except KeyError:
                missing = [n for n in names if n not in row]
                shown = ", ".join(repr(m) for m in missing[:10])
                raise BadRequest(
                    f"Row {r + 1} lacks {len(missing)} column(s) that {reader} reads: {shown}. "
                    "Send them (null for a missing value)."
                ) from None
        elif isinstance(row, list):
            if len(row) != len(names):
                raise BadRequest(
                    f"Row {r + 1} has {len(row)} value(s); {reader} reads {len(names)} "
                    f"columns, in this order: {', '.join(names)}."
                )
            out.append(row)
        else:
            raise BadRequest(
                f"Row {r + 1} is a {type(row).__name__}; a row is an object keyed by column "
                "name, or a list of values in the recipe's column order."
            )
    return out


# ------------------------------------------------------------------------------ reading values
def _array(values: list[Any], name: str, kind: str, reader: str) -> pa.Array:
    where = f"column {name!r}, which {reader} reads as"
    if kind == NUMBER:
        return pa.array([_number(v, r, where) for r, v in enumerate(values)], pa.float64())
    if kind == STRING:
        return pa.array([_string(v, r, where) for r, v in enumerate(values)], pa.string())
    if kind == DATETIME:
        return _datetimes(values, where)
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise BadRequest(
            f"The values of column {name!r} cannot be read for {reader}: {exc}."
        ) from None


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def _number(value: Any, r: int, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            pass
    raise BadRequest(f"Row {r + 1} has {_shown(value)} in the {where} numbers.")


def _string(value: Any, r: int, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadRequest(f"Row {r + 1} has {_shown(value)} in the {where} text.")


def _datetimes(values: list[Any], where: str) -> pa.Array:
    import pandas as pd

    for r, v in enumerate(values):
        if v is not None and not isinstance(v, str):
            raise BadRequest(
                f"Row {r + 1} has {_shown(v)} in the {where} ISO 8601 dates or timestamps."
            )
    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & series.notna().to_numpy())
    if bad.size:
        r = int(bad[0])
        raise BadRequest(
            f"Row {r + 1} has {_shown(values[r])} in the {where} ISO 8601 dates or timestamps."
        )
    return pa.array(values, pa.string())


# ------------------------------------------------------------------------------ writing answers
def encode_labels(labels: Sequence[Any], scores: np.ndarray | None, accept: str) -> bytes:
    """Labels as an answer: JSON ``{"predictions": [{"label": ..., "score": ...}]}``, JSON
    lines of those records, or CSV with one label (``label,score``) per line.

    Raises:
        ValueError: a score that is not a finite number (a model error: the server
            answers 500 rather than write invalid JSON).
    """
    if scores is not None and not np.isfinite(scores).all():
        raise ValueError("the model gave a score that is not a finite number")
    if accept == CSV:
        if scores is None:
            return _csv([[label] for label in labels])
        return _csv([[label, s] for label, s in zip(labels, scores.tolist(), strict=True)])
    if scores is None:
        records = [{"label": label} for label in labels]
    else:
        records = [
            {"label": label, "score": s} for label, s in zip(labels, scores.tolist(), strict=True)
        ]
    return _records(records, accept)


def encode_values(values: np.ndarray, accept: str) -> bytes:
    """A script's rows as an answer: JSON ``{"predictions": [row, ...]}`` (a row is a value
    or a list), JSON lines with one row per line, or CSV with one line per row.

    Raises:
        ValueError: a value JSON cannot hold (NaN, Infinity, an object it cannot write).
    """
    rows = values.tolist()
    if accept == CSV:
        return _csv([list(row) if isinstance(row, (list, tuple)) else [row] for row in rows])
    return _records(rows, accept)


def _records(records: list[Any], accept: str) -> bytes:
    if accept == JSONLINES:
        return "".join(_dumps(r) + "\n" for r in records).encode()
    return _dumps({"predictions": records}).encode()


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    return out.getvalue().encode()


def _csv_value(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a value to answer is not a finite number")
        return repr(value)
    return value


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _dumps(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"a {type(obj).__name__} cannot be written as JSON")

    return json.dumps(value, allow_nan=False, separators=(",", ":"), default=default)
