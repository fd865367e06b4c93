"""Turning blocks of records into rows of features: CSV lines, JSON records, Arrow rows.

CSV blocks take a fast path: Arrow parses the whole block, reading only the
feature columns. If anything in the block is off (a line with another number
of fields, a value that is not a number, a blank line) the block is parsed
again line by line, so each bad record is named with its line and reason while
the good ones go on.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sagelab.errors import InvalidInput
from sagelab.serving._transform_filter import RecordFilter, parse_filter
from sagelab.serving._transform_read import count_lines
from sagelab.serving._transform_spec import CSV, JSON

__all__ = ["Layout", "Parsed", "Plan", "csv_layout", "parse_csv", "parse_json", "parse_rows"]

#: How much of a failed record's text the error file keeps.
_MAX_RAW = 10_000
#: Lines looked at to tell the number of fields of an object's records.
_SAMPLE_LINES = 100


@dataclass(frozen=True)
class Plan:
    """What every worker needs for the whole job (sent once, when it starts).

    Attributes:
        algorithm: the algorithm's name.
        model: the resolved model's fields (what to fetch and the checksums to check).
        settings: the installation's ``home``, ``db_url`` and ``lake`` (to reach the lake).
        features: the model's feature names, in order.
        positional: whether the model takes features by position rather than by name.
        whole: SplitType None (each object is one record).
        single_record: BatchStrategy SingleRecord.
        accept: the output type.
        assemble_line: AssembleWith Line.
        join: JoinSource Input.
        input_filter, output_filter: the filters as written.
    """

    algorithm: str
    model: dict[str, Any]
    settings: dict[str, str]
    features: tuple[str, ...]
    positional: bool
    whole: bool
    single_record: bool
    accept: str
    assemble_line: bool
    join: bool
    input_filter: str = "$"
    output_filter: str = "$"

    @property
    def input_selector(self) -> RecordFilter:
        return parse_filter(self.input_filter)

    @property
    def output_selector(self) -> RecordFilter:
        return parse_filter(self.output_filter, "OutputFilter")


@dataclass(frozen=True)
class Layout:
    """How one input object's records are laid out.

    Attributes:
        content_type: text/csv, application/jsonlines, application/json, or ``rows``.
        columns: fields per CSV line (columns of a table).
        picks: positions of the model's features among them, in the model's order.
        header: the names of the fields, when the object had a header line (or is a table).
        skip_first: the object's first line is its header, not a record.
    """

    content_type: str
    columns: int | None = None
    picks: tuple[int, ...] | None = None
    header: tuple[str, ...] | None = None
    skip_first: bool = False


@dataclass
class Parsed:
    """Rows of features parsed from a block, and the records that failed.

    Attributes:
        X: rows × features.
        lines: each row's line (or row) number in its object.
        raw: each row's text (CSV lines) when the output needs it.
        records: each row's JSON record when the output needs it.
        errors: ``{"line", "record", "reason"}`` per failed record.
        count: records seen (rows + errors).
    """

    X: np.ndarray
    lines: np.ndarray
    raw: list[bytes] | None = None
    records: list[Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0


def error(line: int, raw: bytes | str, reason: str) -> dict[str, Any]:
    """One entry of an errors file."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return {"line": int(line), "record": text[:_MAX_RAW], "reason": reason}


# ---------------------------------------------------------------------------------- CSV
def _fields(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", "replace")]), [])


def _number(text: str) -> float:
    """A CSV field as a number: blank is missing (NaN), as Arrow reads it.

    Raises:
        ValueError: not a number.
    """
    text = text.strip()
    if not text:
        return math.nan
    if "_" in text:  # Python reads '1_000'; Arrow and SageMaker's containers do not
        raise ValueError(text)
    return float(text)


def _is_number(text: str) -> bool:
    try:
        _number(text)
    except ValueError:
        return False
    return True


def csv_layout(block: bytes, plan: Plan) -> Layout:
    """Read an object's layout from its first block: a header or not, fields per line.

    A first line is a header when it names every feature of a model that knows
    its features by name, or when none of its fields is a number.

    Raises:
        InvalidInput: the records do not hold the model's features (named, with the fix).
    """
    lines = [ln.rstrip(b"\r") for ln in block.split(b"\n", _SAMPLE_LINES)[:_SAMPLE_LINES]]
    lines = [ln for ln in lines if ln.strip()]
    count = len(plan.features)
    if not lines:
        return Layout(CSV, count, tuple(range(count)))
    first = [f.strip() for f in _fields(lines[0])]
    named = not plan.positional and set(plan.features) <= set(first)
    header = named or not any(_is_number(f) for f in first if f)
    selector = plan.input_selector
    if header:
        columns = len(first)
        names = selector.names
        chosen = (
            [first.index(n) for n in names if n in first]
            if names is not None
            else selector.indices(columns)
        )
        if names is not None and len(chosen) != len(names):
            raise InvalidInput(
                f"The InputFilter {selector.text} names columns the header lacks: "
                f"{[n for n in names if n not in first]}."
            )
        if named:
            chosen = [first.index(f) for f in plan.features if first.index(f) in chosen]
        picks = tuple(chosen)
    else:
        sizes = Counter(len(_fields(ln)) for ln in lines[: _SAMPLE_LINES - 1])
        columns = sizes.most_common(1)[0][0]
        picks = tuple(selector.indices(columns))
    if len(picks) != count:
        hint = (
            " If the first column is the label or an ID, leave it out with --input-filter '$[1:]'."
            if len(picks) == count + 1
            else ""
        )
        raise InvalidInput(
            f"The model takes {count} features, but the records give {len(picks)} after the "
            f"InputFilter {selector.text} ({columns} fields per line"
            f"{', header: ' + ','.join(first[:8]) + ('...' if len(first) > 8 else '') if header else ''}"
            f").{hint}"
        )
    return Layout(CSV, columns, picks, tuple(first) if header else None, header)


def parse_csv(
    data: bytes, first: int, layout: Layout, *, keep_raw: bool, threads: bool = False
) -> Parsed:
    """Parse a block of CSV lines; the fast path when every line is clean, else line by line.

    With ``threads``, Arrow parses the block on every core (a block transformed in the
    job's own process); a worker process, one of several, parses on one thread.
    """
    skip = layout.skip_first and first == 1
    if skip:
        cut = data.find(b"\n") + 1 or len(data)
        data, first = data[cut:], 2
    parsed = _fast_csv(data, first, layout, keep_raw=keep_raw, threads=threads)
    return parsed if parsed is not None else _slow_csv(data, first, layout, keep_raw=keep_raw)


def _fast_csv(
    data: bytes, first: int, layout: Layout, *, keep_raw: bool, threads: bool
) -> Parsed | None:
    columns, picks = layout.columns or 0, layout.picks or ()
    lines = count_lines(data) + (0 if data.endswith(b"\n") or not data else 1)
    if lines == 0:
        return Parsed(np.empty((0, len(picks))), np.empty(0, dtype=np.int64))
    names = [f"c{i}" for i in range(columns)]
    wanted = list(dict.fromkeys(names[i] for i in picks))
    bad: list[int] = []

    def invalid(row: Any) -> str:
        bad.append(row.number)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(wanted, pa.float64()), include_columns=wanted
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if bad or table.num_rows != lines:
        return None
    X = np.empty((table.num_rows, len(picks)), dtype=np.float64)
    for j, i in enumerate(picks):
        X[:, j] = table.column(names[i]).to_numpy()
    raw = None
    if keep_raw:
        raw = data.split(b"\n")[:lines]
        if b"\r" in data:
            raw = [ln.rstrip(b"\r") for ln in raw]
    return Parsed(X, np.arange(first, first + lines), raw=raw, count=lines)


def _slow_csv(data: bytes, first: int, layout: Layout, *, keep_raw: bool) -> Parsed:
    picks, columns = layout.picks or (), layout.columns
    rows: list[list[float]] = []
    numbers: list[int] = []
    raw: list[bytes] = []
    errors: list[dict[str, Any]] = []
    count = 0
    for offset, line in enumerate(data.split(b"\n")):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        count += 1
        number = first + offset
        fields = _fields(line)
        if len(fields) != columns:
            errors.append(error(number, line, f"expected {columns} fields, got {len(fields)}"))
            continue
        try:
            values = [_number(fields[i]) for i in picks]
        except ValueError:
            bad = next(i for i in picks if not _is_number(fields[i]))
            errors.append(
                error(number, line, f"field {bad + 1} is not a number: {fields[bad][:100]!r}")
            )
            continue
        rows.append(values)
        numbers.append(number)
        if keep_raw:
            raw.append(line)
    X = np.array(rows, dtype=np.float64).reshape(len(rows), len(picks))
    return Parsed(
        X, np.array(numbers, dtype=np.int64), raw if keep_raw else None, None, errors, count
    )


# ---------------------------------------------------------------------------------- JSON
def json_features(value: Any, plan: Plan) -> list[float]:
    """A JSON record's features, after the InputFilter.

    Raises:
        ValueError: the record does not hold the model's features (the reason).
    """
    try:
        value = plan.input_selector.apply(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None
    if isinstance(value, dict):
        if isinstance(value.get("features"), list):
            value = value["features"]
        elif plan.positional:
            raise ValueError(
                "the model takes features by position: give an array, or an object with 'features'"
            )
        else:
            missing = [f for f in plan.features if f not in value]
            if missing:
                raise ValueError(f"lacks the feature(s) {', '.join(missing[:10])}")
            value = [value[f] for f in plan.features]
    if not isinstance(value, list):
        raise ValueError(f"expected an array or object of features, got {type(value).__name__}")
    if len(value) != len(plan.features):
        raise ValueError(f"expected {len(plan.features)} features, got {len(value)}")
    out = []
    for v in value:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
        else:
            raise ValueError(f"feature values must be numbers, got {v!r}"[:200])
    return out


def parse_json(data: bytes, first: int, plan: Plan, content_type: str) -> Parsed:
    """Parse JSON records: one per line, or (SplitType None, application/json) one document."""
    if plan.whole and content_type == JSON:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            return _failed_block(data, f"not valid JSON: {exc}")
        items = doc.get("instances") if isinstance(doc, dict) and "instances" in doc else doc
        if not (isinstance(items, list) and items and isinstance(items[0], list | dict)):
            items = [items]
        try:
            rows = [json_features(item, plan) for item in items]
        except ValueError as exc:
            return _failed_block(data, str(exc))
        X = np.array(rows, dtype=np.float64).reshape(len(rows), len(plan.features))
        return Parsed(X, np.full(len(rows), first), None, items, [], len(rows))
    rows, numbers, records, errors, count = [], [], [], [], 0
    for offset, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        count += 1
        try:
            value = json.loads(line)
            rows.append(json_features(value, plan))
        except ValueError as exc:
            errors.append(error(first + offset, line.rstrip(b"\r"), str(exc)))
            continue
        numbers.append(first + offset)
        records.append(value)
    X = np.array(rows, dtype=np.float64).reshape(len(rows), len(plan.features))
    return Parsed(X, np.array(numbers, dtype=np.int64), None, records, errors, count)


def _failed_block(data: bytes, reason: str) -> Parsed:
    return Parsed(np.empty((0, 0)), np.empty(0, np.int64), errors=[error(1, data, reason)], count=1)


# ---------------------------------------------------------------------------------- rows
def rows_layout(schema: pa.Schema, plan: Plan) -> Layout:
    """The layout of a table's or query's rows: features by name, or by position.

    Raises:
        InvalidInput: missing feature columns, or another number of them.
    """
    names = list(schema.names)
    selector = plan.input_selector
    chosen = selector.names if selector.names is not None else None
    positions = (
        [names.index(n) for n in chosen if n in names]
        if chosen is not None
        else selector.indices(len(names))
    )
    if not plan.positional and set(plan.features) <= {names[i] for i in positions}:
        picks = [names.index(f) for f in plan.features]
    else:
        picks = positions
    if len(picks) != len(plan.features):
        missing = [f for f in plan.features if f not in names] if not plan.positional else []
        raise InvalidInput(
            f"The model takes {len(plan.features)} features, but the rows give {len(picks)} "
            f"after the InputFilter {selector.text}"
            + (f"; missing columns: {', '.join(missing[:10])}" if missing else "")
            + ". Select the feature columns in the query, or use --input-filter."
        )
    bad = [
        names[i]
        for i in picks
        if not pa.types.is_integer(schema.field(i).type)
        and not pa.types.is_floating(schema.field(i).type)
        and not pa.types.is_decimal(schema.field(i).type)
        and not pa.types.is_boolean(schema.field(i).type)
        and not pa.types.is_null(schema.field(i).type)
    ]
    if bad:
        raise InvalidInput(
            f"The model needs numeric features; these columns are not: {', '.join(bad[:10])}. "
            "Encode them the way the training data was."
        )
    return Layout("rows", len(names), tuple(picks), tuple(names))


def parse_rows(batch: pa.RecordBatch, first: int, layout: Layout) -> Parsed:
    """The features of a batch of table rows (nulls become NaN)."""
    picks = layout.picks or ()
    X = np.empty((batch.num_rows, len(picks)), dtype=np.float64)
    for j, i in enumerate(picks):
        column = batch.column(i)
        if not pa.types.is_floating(column.type):
            column = column.cast(pa.float64())
        X[:, j] = column.to_numpy(zero_copy_only=False)
    return Parsed(X, np.arange(first, first + batch.num_rows), count=batch.num_rows)
