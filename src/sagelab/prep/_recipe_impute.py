"""Missing values: drop the rows, or fill them with scikit-learn's imputers.

``mean``, ``median``, ``most_frequent`` and ``constant`` use ``SimpleImputer``
(text columns take ``most_frequent`` and ``constant`` too); ``knn`` uses
``KNNImputer`` and ``iterative`` (MICE) uses ``IterativeImputer``, both over
the step's columns only. The last two sum across a row's values in BLAS, whose
rounding depends on how many rows go in together, so they fill each
incomplete row on its own (rows without a missing value pass untouched): a
row gets the same values at serving time as in a batch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from sagelab.errors import InvalidInput
from sagelab.prep._recipe_frame import DATETIME, KINDS, NUMBER, STRING, Frame, Schema
from sagelab.prep._recipe_params import Param
from sagelab.prep._recipe_step import ApplyContext, FitContext, Step, finite, per_row, require

__all__ = ["Impute"]

_STRATEGIES = ("mean", "median", "most_frequent", "constant", "knn", "iterative", "drop")
_NUMBERS_ONLY = ("mean", "median", "knn", "iterative")


class Impute(Step):
    """Fill missing values (or drop the rows that have them), as learnt from the training data."""

    name = "impute"
    params = (
        Param(
            "columns",
            "columns",
            help="Columns to fill (default: every number column but the label).",
        ),
        Param("strategy", "str", "mean", choices=_STRATEGIES),
        Param(
            "fill_value",
            "scalar",
            only_for=("strategy", ("constant",)),
            help="The value for strategy constant (default 0 for numbers, 'missing' for text).",
        ),
        Param("n_neighbors", "int", 5, low=1, only_for=("strategy", ("knn",))),
        Param(
            "weights",
            "str",
            "uniform",
            choices=("uniform", "distance"),
            only_for=("strategy", ("knn",)),
        ),
        Param("max_iter", "int", 10, low=1, high=1000, only_for=("strategy", ("iterative",))),
    )
    column_kinds = KINDS
    touches_target = True

    def preferred_kind(self, col: str) -> str | None:
        return NUMBER if self.values["strategy"] in _NUMBERS_ONLY else None

    def check_columns(self, names: list[str], schema: Schema, target: str | None) -> list[str]:
        strategy = self.values["strategy"]
        problems = []
        for col in names:
            if not schema.has(col):
                problems.append(self.missing_column(col, list(schema.kinds)))
                continue
            kind = schema.kind(col)
            if col == target and strategy != "drop":
                problems.append(
                    f"{self.label} fills the label column {col!r}; a recipe does not make up "
                    "labels. Drop the rows instead (strategy: drop)."
                )
            elif kind is None or strategy == "drop":
                continue
            elif strategy in _NUMBERS_ONLY and kind != NUMBER:
                problems.append(
                    f"{self.label}: strategy {strategy!r} needs number columns; {col!r} holds "
                    f"{kind} values. Use most_frequent or constant for text."
                )
            elif kind not in (NUMBER, STRING):
                problems.append(
                    f"{self.label}: strategy {strategy!r} fills numbers and text; {col!r} holds "
                    f"{kind} values. Use strategy drop for it."
                )
            elif strategy == "constant" and self.values["fill_value"] is not None:
                fill = self.values["fill_value"]
                if kind == NUMBER and (isinstance(fill, str | bool)):
                    problems.append(
                        f"{self.label}: 'fill_value' {fill!r} is not a number, but {col!r} holds numbers."
                    )
                if kind == STRING and not isinstance(fill, str):
                    problems.append(
                        f"{self.label}: 'fill_value' {fill!r} is not text, but {col!r} holds text."
                    )
        return problems

    def resolve(self, frame: Frame, target: str | None) -> None:
        if not self.columns and self.values["strategy"] == "drop":
            self.columns = [n for n in frame.names if n != target]
        super().resolve(frame, target)
        if self.values["strategy"] != "drop":
            bad = [c for c in self.columns if frame.kinds[c] == DATETIME]
            if self.values["strategy"] in _NUMBERS_ONLY:
                bad += [c for c in self.columns if frame.kinds[c] == STRING]
            if bad:
                raise InvalidInput(self.wrong_kind(bad[0], frame.kinds[bad[0]]))

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        strategy = self.values["strategy"]
        if strategy == "drop":
            return
        impute = require("sklearn.impute", "scikit-learn")
        numbers = [c for c in self.columns if frame.kinds[c] == NUMBER]
        texts = [c for c in self.columns if frame.kinds[c] == STRING]
        self.state["numbers"], self.state["texts"] = numbers, texts
        if numbers:
            X = finite(frame.numbers(numbers))
            if strategy == "knn":
                est: Any = impute.KNNImputer(
                    n_neighbors=self.values["n_neighbors"],
                    weights=self.values["weights"],
                    keep_empty_features=True,
                )
            elif strategy == "iterative":
                require("sklearn.experimental.enable_iterative_imputer", "scikit-learn")
                est = impute.IterativeImputer(
                    max_iter=self.values["max_iter"],
                    random_state=ctx.seed,
                    keep_empty_features=True,
                )
            else:
                fill = self.values["fill_value"]
                est = impute.SimpleImputer(
                    strategy=strategy,
                    fill_value=0.0 if fill is None else float(fill),
                    keep_empty_features=True,
                )
            with warnings.catch_warnings():
                # IterativeImputer warns when it stops at max_iter; the fill is still usable.
                warnings.simplefilter("ignore")
                est.fit(X)
            self.estimators["numbers"] = est
        if texts:
            fill = self.values["fill_value"]
            est = impute.SimpleImputer(
                strategy=strategy,
                missing_values=None,
                fill_value="missing" if fill is None else str(fill),
                keep_empty_features=True,
            )
            est.fit(frame.objects(texts))
            self.estimators["texts"] = est
            # Nothing to learn from a column of missing values only: leave it missing.
            self.state["empty"] = [c for c in texts if frame.missing(c).all()]

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        strategy = self.values["strategy"]
        if strategy == "drop":
            keep = np.ones(frame.n_rows, dtype=bool)
            for col in self.columns:
                if col in frame.columns:  # the label is absent at inference
                    keep &= ~frame.missing(col)
            return ctx.drop(self, frame, keep)
        if not frame.n_rows:
            return frame
        numbers: list[str] = self.state.get("numbers", [])
        texts: list[str] = self.state.get("texts", [])
        if numbers:
            est = self.estimators["numbers"]
            X = finite(frame.numbers(numbers))
            if strategy in ("knn", "iterative"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    filled = per_row(est.transform, X, np.isnan(X).any(axis=1))
            else:
                filled = est.transform(X)
            for j, col in enumerate(numbers):
                frame.columns[col] = np.ascontiguousarray(filled[:, j], dtype=np.float64)
        if texts:
            filled = self.estimators["texts"].transform(frame.objects(texts))
            for j, col in enumerate(texts):
                if col in self.state.get("empty", []):
                    continue
                out = np.empty(frame.n_rows, dtype=object)
                out[:] = [None if v is None else str(v) for v in filled[:, j]]
                frame.columns[col] = out
        return frame
