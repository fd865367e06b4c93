"""Writing predictions in the Accept type, joined with their input records or not.

Predictions are written as an endpoint answers (:func:`encode_prediction`): a
CSV line holds the value (probability of the positive class, regression value,
cluster, anomaly score) or, for a multiclass model, the class probabilities side
by side; a JSON record holds :meth:`Prediction.records`' fields. Joined CSV keeps
each input line exactly as it was and appends the prediction's fields; joined
JSON adds ``SageMakerOutput`` to the input object (or wraps an input that is not
an object as ``SageMakerInput``), as SageMaker does. An OutputFilter selects from
the joined record (an array of fields for CSV, the object for JSON).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sagelab.algorithms import Prediction
from sagelab.serving._codec import encode_prediction
from sagelab.serving._transform_records import Layout, Parsed, Plan
from sagelab.serving._transform_spec import CSV, JSON, JSONLINES

__all__ = ["concat", "finite_rows", "format_block", "prediction_columns", "subset"]


def _fields(pred: Prediction) -> np.ndarray:
    """What a CSV line of the prediction holds, as rows × fields (as the endpoint writes it)."""
    array = np.asarray(pred.probabilities if pred.probabilities is not None else pred.values)
    return array if array.ndim == 2 else array.reshape(-1, 1)


def prediction_columns(pred: Prediction) -> list[str]:
    """The names of a CSV line's prediction fields (for headers)."""
    if pred.probabilities is not None:
        return [f"probability_{k}" for k in range(np.asarray(pred.probabilities).shape[1])]
    return ["score"]


def finite_rows(pred: Prediction) -> np.ndarray:
    """Which rows' predictions are finite numbers (others cannot be written as JSON)."""
    fields = _fields(pred)
    if fields.dtype.kind != "f":
        return np.ones(len(fields), dtype=bool)
    return np.isfinite(fields).all(axis=1)


def subset(pred: Prediction, rows: np.ndarray) -> Prediction:
    """The predictions of some rows (a boolean mask or positions)."""
    return Prediction(
        values=pred.values[rows],
        labels=None if pred.labels is None else pred.labels[rows],
        probabilities=None if pred.probabilities is None else pred.probabilities[rows],
        extra={k: np.asarray(v)[rows] for k, v in pred.extra.items()},
    )


def concat(preds: Sequence[Prediction]) -> Prediction:
    """Predictions of consecutive row groups as one."""
    first = preds[0]

    def joined(arrays: list[Any]) -> Any:
        return None if arrays[0] is None else np.concatenate(arrays)

    return Prediction(
        values=np.concatenate([p.values for p in preds]),
        labels=joined([p.labels for p in preds]),
        probabilities=joined([p.probabilities for p in preds]),
        extra={k: np.concatenate([np.asarray(p.extra[k]) for p in preds]) for k in first.extra},
    )


def _text(value: Any) -> str:
    # As the endpoint writes a CSV value: repr for floats (shortest exact form).
    return repr(value) if isinstance(value, float) else str(value)


def _texts(pred: Prediction) -> list[list[str]]:
    return [[_text(v) for v in row] for row in _fields(pred).tolist()]


def _prediction_lines(pred: Prediction) -> list[bytes]:
    """Each row's prediction fields as one CSV line's text: the endpoint's CSV answer, cut."""
    return encode_prediction(pred, CSV).split(b"\n")[:-1]


def _csv_line(values: Any) -> bytes:
    if isinstance(values, dict):
        values = list(values.values())
    if not isinstance(values, list):
        values = [values]
    sink = io.StringIO()
    csv.writer(sink, lineterminator="\n").writerow(values)
    return sink.getvalue().encode("utf-8")


def _split(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", "replace")]), [])


def _number_or_text(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    integral = value.is_integer() and not any(c in text for c in ".eEnN")
    return int(value) if integral else value


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def format_block(
    parsed: Parsed,
    pred: Prediction | None,
    plan: Plan,
    layout: Layout,
    *,
    first_block: bool,
    batch: pa.RecordBatch | None = None,
) -> bytes:
    """The output of one block's good records, in input order.

    Args:
        parsed: the block's records (only the rows that predicted well).
        pred: their predictions (None when there are none).
        plan: the job's output options.
        layout: the object's layout (its header, for joined CSV).
        first_block: whether this is the object's first block (a header is written once).
        batch: the table rows, for table and query inputs.
    """
    if pred is None or len(pred.values) == 0:
        return b""
    selector = plan.output_selector
    if plan.accept == CSV and batch is not None:
        return _rows_csv(batch, pred, plan, first_block=first_block)
    if not plan.join and selector.is_identity:
        # AssembleWith Line asks for one line per record, which JSON lines are.
        kind = JSONLINES if plan.accept == JSON and plan.assemble_line else plan.accept
        body = encode_prediction(pred, kind)
        return body if body.endswith(b"\n") else body + b"\n"
    if plan.accept == CSV:
        return _csv_records(parsed, pred, plan, layout, first_block=first_block)
    return _json_records(parsed, pred, plan, batch)


def _csv_records(
    parsed: Parsed, pred: Prediction, plan: Plan, layout: Layout, *, first_block: bool
) -> bytes:
    selector = plan.output_selector
    out = []
    if plan.join and first_block and layout.header is not None:
        out.append(_csv_line(selector.apply([*layout.header, *prediction_columns(pred)])))
    if plan.join and selector.is_identity and parsed.raw is not None:
        # The input line is kept byte for byte; only the prediction is appended.
        out += [
            raw + b"," + line + b"\n"
            for raw, line in zip(parsed.raw, _prediction_lines(pred), strict=True)
        ]
        return b"".join(out)
    for i, fields in enumerate(_texts(pred)):
        if plan.join and parsed.raw is not None:
            fields = [*_split(parsed.raw[i]), *fields]
        out.append(_csv_line(selector.apply(fields)))
    return b"".join(out)


def _rows_csv(batch: pa.RecordBatch, pred: Prediction, plan: Plan, *, first_block: bool) -> bytes:
    fields = _fields(pred)
    table = pa.table({name: fields[:, k] for k, name in enumerate(prediction_columns(pred))})
    if plan.join:
        joined = pa.Table.from_batches([batch])
        for name, column in zip(table.column_names, table.columns, strict=True):
            joined = joined.append_column(name, column)
        table = joined
    selector = plan.output_selector
    if not selector.is_identity:
        names = selector.names
        table = table.select(
            list(names) if names is not None else selector.indices(table.num_columns)
        )
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=plan.join and first_block))
    return sink.getvalue()


def _json_records(
    parsed: Parsed, pred: Prediction, plan: Plan, batch: pa.RecordBatch | None
) -> bytes:
    selector = plan.output_selector
    outputs: list[Any] = pred.records()
    if plan.join:
        if batch is not None:
            inputs: list[Any] = batch.to_pylist()
        elif parsed.records is not None:
            inputs = parsed.records
        else:
            inputs = [[_number_or_text(f) for f in _split(line)] for line in parsed.raw or []]
        outputs = [
            {**given, "SageMakerOutput": output}
            if isinstance(given, dict)
            else {"SageMakerInput": given, "SageMakerOutput": output}
            for given, output in zip(inputs, outputs, strict=True)
        ]
    if not selector.is_identity:
        outputs = [selector.apply(o) for o in outputs]
    if plan.accept == JSON and not plan.assemble_line:
        return (_dumps({"predictions": outputs}) + "\n").encode("utf-8")
    return "".join(_dumps(o) + "\n" for o in outputs).encode("utf-8")
