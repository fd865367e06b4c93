"""A transform worker: parse a block, predict, format; one model per worker process.

Each worker process loads the model once, when it starts, and predicts on one
thread (the job runs several workers side by side). A mini-batch the model
refuses as a whole (a missing value where it cannot take one) is not lost:
the rows it can take are predicted together and the others, one by one, each
failing with its own reason.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sagelab.algorithms import Algorithm, Prediction, get_algorithm
from sagelab.config import Settings
from sagelab.errors import InvalidInput
from sagelab.jobs import JobService
from sagelab.lake import Lake
from sagelab.registry import ModelRegistry, ResolvedModel
from sagelab.serving._transform_output import concat, finite_rows, format_block, subset
from sagelab.serving._transform_read import Span
from sagelab.serving._transform_records import (
    Layout,
    Parsed,
    Plan,
    error,
    parse_csv,
    parse_json,
    parse_rows,
)
from sagelab.serving._transform_spec import CSV
from sagelab.store import Store

__all__ = ["Task", "TaskResult", "Worker", "run_task", "warm_up"]


@dataclass(frozen=True)
class Task:
    """One block of one input object, sent to a worker.

    Attributes:
        index: the block's place in the whole job (outputs are written in this order).
        obj: which input object it belongs to.
        first: its first line (row) number in the object.
        data: the raw bytes, where they lie in a local file (read by the worker), or an
            Arrow batch of table rows.
        size: input bytes it stands for.
        layout: how the object's records are laid out.
        first_block: whether it is the object's first block.
    """

    index: int
    obj: int
    first: int
    data: bytes | pa.RecordBatch | Span
    size: int
    layout: Layout
    first_block: bool


@dataclass
class TaskResult:
    """What a worker made of a block: the output bytes, failed records and counts."""

    index: int
    obj: int
    output: bytes
    errors: list[dict[str, Any]] = field(default_factory=list)
    records_in: int = 0
    records_out: int = 0
    size: int = 0


class Worker:
    """Parses, predicts and formats blocks with the job's model, fetched and checked first.

    Args:
        plan: the job's options and the model (with the checksums its files must have).
        threads: threads to predict on (None: the algorithm's default, every core).
    """

    def __init__(self, plan: Plan, threads: int | None = 1) -> None:
        self.plan = plan
        self.algorithm: Algorithm = _load(plan)
        # Parse on every core when predicting on more than one (the job's own process).
        self.parse_threads = threads is None or threads > 1
        if threads is not None:
            self.algorithm.set_prediction_threads(threads)

    def run(self, task: Task) -> TaskResult:
        """Transform one block."""
        plan, layout = self.plan, task.layout
        data = task.data.read() if isinstance(task.data, Span) else task.data
        batch = data if isinstance(data, pa.RecordBatch) else None
        if batch is not None:
            parsed = parse_rows(batch, task.first, layout)
        elif layout.content_type == CSV:
            keep = plan.join or not plan.output_selector.is_identity
            parsed = parse_csv(data, task.first, layout, keep_raw=keep, threads=self.parse_threads)
        else:
            parsed = parse_json(data, task.first, plan, layout.content_type)
        pred, ok, reasons = self._predict(parsed.X)
        if pred is not None:
            finite = finite_rows(pred)
            if not finite.all():
                for i in np.flatnonzero(ok)[~finite]:
                    reasons[int(i)] = "the model predicted a value that is not a finite number"
                ok[np.flatnonzero(ok)[~finite]] = False
                pred = subset(pred, finite) if finite.any() else None
        errors = list(parsed.errors)
        for i, reason in reasons.items():
            errors.append(
                error(int(parsed.lines[i]), self._raw(data, task.first, parsed, i), reason)
            )
        if plan.whole and errors:
            reason = "; ".join(f"line {e['line']}: {e['reason']}" for e in errors[:5])
            whole = error(1, data[:10_000] if isinstance(data, bytes) else "", reason)
            return TaskResult(task.index, task.obj, b"", [whole], 1, 0, task.size)
        if not ok.all():
            parsed = _keep(parsed, ok)
            batch = batch.filter(pa.array(ok)) if batch is not None else None
        errors.sort(key=lambda e: e["line"])
        output = format_block(parsed, pred, plan, layout, first_block=task.first_block, batch=batch)
        done = len(parsed.X)
        if plan.whole:
            return TaskResult(task.index, task.obj, output, [], 1, 1, task.size)
        return TaskResult(task.index, task.obj, output, errors, parsed.count, done, task.size)

    # ------------------------------------------------------------------ predicting
    def _predict(self, X: np.ndarray) -> tuple[Prediction | None, np.ndarray, dict[int, str]]:
        """Predictions of the rows the model takes, which rows those are, and why not the others."""
        n = len(X)
        if n == 0:
            return None, np.ones(0, dtype=bool), {}
        if self.plan.single_record:
            return self._one_by_one(X, np.arange(n))
        try:
            return self.algorithm.predict(X), np.ones(n, dtype=bool), {}
        except InvalidInput:
            pass
        finite = np.isfinite(X).all(axis=1)
        if finite.all() or not finite.any():
            return self._one_by_one(X, np.arange(n))
        try:
            good = self.algorithm.predict(X[finite])
        except InvalidInput:
            return self._one_by_one(X, np.arange(n))
        rest, rest_ok, reasons = self._one_by_one(X, np.flatnonzero(~finite))
        if rest is None:
            return good, finite, reasons
        # Back in row order: the finite rows' predictions, then the others' that succeeded.
        positions = np.concatenate([np.flatnonzero(finite), np.flatnonzero(rest_ok)])
        merged = concat([good, rest])
        return subset(merged, np.argsort(positions, kind="stable")), finite | rest_ok, reasons

    def _one_by_one(
        self, X: np.ndarray, rows: np.ndarray
    ) -> tuple[Prediction | None, np.ndarray, dict[int, str]]:
        """Predict ``rows`` of ``X`` one at a time (SingleRecord, or to find the bad ones)."""
        ok = np.zeros(len(X), dtype=bool)
        preds: list[Prediction] = []
        reasons: dict[int, str] = {}
        for i in rows:
            try:
                preds.append(self.algorithm.predict(X[i : i + 1]))
            except InvalidInput as exc:
                reasons[int(i)] = _reason(exc, X[i])
                continue
            ok[i] = True
        return (concat(preds) if preds else None), ok, reasons

    # ------------------------------------------------------------------ failed records
    @staticmethod
    def _raw(data: bytes | pa.RecordBatch, first: int, parsed: Parsed, i: int) -> bytes | str:
        """Failed row ``i``'s record as it was given (``data`` is its block, from line ``first``)."""
        if parsed.raw is not None:
            return parsed.raw[i]
        if parsed.records is not None:
            return json.dumps(parsed.records[i], default=str)
        if isinstance(data, pa.RecordBatch):
            row = data.slice(int(parsed.lines[i]) - first, 1).to_pylist()[0]
            return json.dumps(row, default=str)
        lines = data.split(b"\n")
        return lines[int(parsed.lines[i]) - first].rstrip(b"\r")


def _load(plan: Plan) -> Algorithm:
    """Fetch the model, check every file against the checksums resolved at submit, load it.

    Raises:
        InvalidInput: a file does not match its checksum (the model is not loaded).
        NotFound: the model's files are gone.
    """
    given = plan.settings
    settings = Settings(home=Path(given["home"]), db_url=given["db_url"], lake=given["lake"])
    # The store is not read here; skipping the migration check keeps worker start-up short.
    store = Store(settings.db_url, migrate=False)
    try:
        registry = ModelRegistry(
            store, Lake.from_settings(settings), JobService(store, settings, recover=False)
        )
        with tempfile.TemporaryDirectory(prefix="sagelab-transform-") as tmp:
            model = registry.load(ResolvedModel(**plan.model), workdir=Path(tmp) / "model")
    finally:
        store.dispose()
    return model.algorithm


def _keep(parsed: Parsed, ok: np.ndarray) -> Parsed:
    picks = np.flatnonzero(ok)
    return Parsed(
        parsed.X[ok],
        parsed.lines[ok],
        None if parsed.raw is None else [parsed.raw[i] for i in picks],
        None if parsed.records is None else [parsed.records[i] for i in picks],
        parsed.errors,
        parsed.count,
    )


def _reason(exc: InvalidInput, row: np.ndarray) -> str:
    bad = np.flatnonzero(~np.isfinite(row))
    if len(bad):
        shown = ", ".join(str(int(j) + 1) for j in bad[:10])
        return f"missing (NaN) or infinite value in feature(s) {shown}, which the model cannot take"
    return str(exc)


class _Process:
    """This worker process's model: a pool hands state to its tasks only through the
    module, so the one :class:`Worker` (built for the job's plan) lives on this holder."""

    worker: Worker | None = None


def warm_up(algorithm: str) -> None:
    """A pool's initializer: import the algorithm (and the library it is named after) early.

    Importing XGBoost or LightGBM takes longer than predicting a block, so workers do it
    while the job lists its inputs and reads the first blocks. The algorithm contract
    does not declare its packages, so its name is the hint (as training's preload does).
    """
    get_algorithm(algorithm)
    if importlib.util.find_spec(algorithm) is not None:
        with contextlib.suppress(ImportError):
            importlib.import_module(algorithm)


def run_task(plan: Plan, task: Task) -> TaskResult:
    """Transform one block in this worker process (the model is loaded on the first)."""
    if _Process.worker is None or _Process.worker.plan != plan:
        _Process.worker = Worker(plan)
    return _Process.worker.run(task)
