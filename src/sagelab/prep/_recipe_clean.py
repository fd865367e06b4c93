"""Cleaning steps: drop columns, de-duplicate, outliers, and resampling for class imbalance."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from sagelab.errors import InvalidInput
from sagelab.prep._recipe_frame import KINDS, NUMBER, OTHER, Frame, Schema
from sagelab.prep._recipe_params import Param
from sagelab.prep._recipe_step import ApplyContext, FitContext, Step, require

__all__ = ["Deduplicate", "DropColumns", "Outliers", "Resample"]


class DropColumns(Step):
    """Remove columns. The data need not have them at inference."""

    name = "drop_columns"
    params = (Param("columns", "columns", required=True, help="The columns to remove."),)
    column_kinds = KINDS
    default_kind = None

    def plan_outputs(self, schema: Schema, target: str | None) -> None:
        for col in self.columns:
            schema.kinds.pop(col, None)

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        return None

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        frame.drop(self.columns)
        return frame

    def reads(self, frame_names: list[str]) -> list[str]:
        return []


class Deduplicate(Step):
    """Keep the first of rows that are equal on the given columns (default: all but the label).

    At inference it removes duplicates within the data it is given; applied in
    batches (``apply_recipe``) it remembers the rows kept so far, so a row equal
    to one of an earlier batch is removed too. Rows are compared by two 64-bit
    hashes of their values.
    """

    name = "deduplicate"
    params = (
        Param(
            "columns", "columns", help="Columns that make rows equal (default: all but the label)."
        ),
    )
    column_kinds = KINDS
    default_kind = None

    def resolve(self, frame: Frame, target: str | None) -> None:
        if not self.columns:
            self.columns = [n for n in frame.names if n != target]
        super().resolve(frame, target)

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        return None

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        if not frame.n_rows:
            return frame
        import pandas as pd

        data = {}
        for i, col in enumerate(self.columns):
            values = frame.columns[col]
            if frame.kinds[col] == OTHER:
                values = np.array([repr(v) for v in values], dtype=object)
            data[f"c{i}"] = values
        table = pd.DataFrame(data)
        first = pd.util.hash_pandas_object(table, index=False).to_numpy()
        second = pd.util.hash_pandas_object(
            table, index=False, hash_key="sagelab-dedup-02"
        ).to_numpy()
        seen = ctx.seen.setdefault(self.index, set())
        keep = np.zeros(frame.n_rows, dtype=bool)
        for r, key in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
            if key not in seen:
                seen.add(key)
                keep[r] = True
        return ctx.drop(self, frame, keep)


class Outliers(Step):
    """Clip or drop values beyond quantiles or Tukey's IQR fences, or log-transform them.

    ``method: log`` maps x to sign(x)·log(1 + |x|): defined for every number, it
    keeps order and sign and tames large magnitudes. Bounds are learnt at fit
    time; a missing value is never an outlier.
    """

    name = "outliers"
    params = (
        Param("columns", "columns", help="Number columns (default: all but the label)."),
        Param("method", "str", "iqr", choices=("iqr", "quantile", "log")),
        Param(
            "action",
            "str",
            "clip",
            choices=("clip", "drop"),
            only_for=("method", ("iqr", "quantile")),
            help="clip values to the bounds, or drop the rows beyond them.",
        ),
        Param("lower", "float", 0.01, low=0, high=1, only_for=("method", ("quantile",))),
        Param("upper", "float", 0.99, low=0, high=1, only_for=("method", ("quantile",))),
        Param("factor", "float", 1.5, low=0, only_for=("method", ("iqr",))),
    )

    def check_values(self) -> list[str]:
        if self.values["method"] == "quantile" and self.values["lower"] >= self.values["upper"]:
            return [
                f"{self.label}: 'lower' ({self.values['lower']:g}) must be below 'upper' "
                f"({self.values['upper']:g})."
            ]
        return []

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        method = self.values["method"]
        if method == "log":
            return
        bounds: dict[str, list[float] | None] = {}
        for col in self.columns:
            x = frame.columns[col]
            x = x[~np.isnan(x)]
            if not x.size:
                bounds[col] = None  # nothing to learn from: leave the column as it is
                continue
            if method == "quantile":
                lo, hi = np.quantile(x, [self.values["lower"], self.values["upper"]])
            else:
                q1, q3 = np.quantile(x, [0.25, 0.75])
                spread = self.values["factor"] * (q3 - q1)
                lo, hi = q1 - spread, q3 + spread
            bounds[col] = [float(lo), float(hi)]
        self.state["bounds"] = bounds

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        if self.values["method"] == "log":
            for col in self.columns:
                x = frame.columns[col]
                frame.columns[col] = np.sign(x) * np.log1p(np.abs(x))
            return frame
        bounds: dict[str, Any] = self.state["bounds"]
        if self.values["action"] == "clip":
            for col in self.columns:
                if bounds.get(col) is not None:
                    lo, hi = bounds[col]
                    frame.columns[col] = np.clip(frame.columns[col], lo, hi)
            return frame
        keep = np.ones(frame.n_rows, dtype=bool)
        for col in self.columns:
            if bounds.get(col) is not None:
                lo, hi = bounds[col]
                x = frame.columns[col]
                keep &= ~((x < lo) | (x > hi))
        return ctx.drop(self, frame, keep)


_SAMPLERS = {
    "over": ("imblearn.over_sampling", "RandomOverSampler"),
    "under": ("imblearn.under_sampling", "RandomUnderSampler"),
    "smote": ("imblearn.over_sampling", "SMOTE"),
}


class Resample(Step):
    """Balance the classes of the label by random over- or under-sampling, or SMOTE.

    Training only: it runs while the recipe is fitted, so the training table and
    every later step see the balanced rows, and never at inference. SMOTE makes
    new rows between neighbours, so it needs every column to be a number
    without missing values (encode and impute first).
    """

    name = "resample"
    params = (
        Param("method", "str", required=True, choices=tuple(_SAMPLERS)),
        Param(
            "sampling_strategy",
            "str_or_float",
            "auto",
            help="imbalanced-learn's sampling_strategy: auto, minority, not minority, not "
            "majority, all, or a ratio for two classes.",
        ),
        Param("k_neighbors", "int", 5, low=1, only_for=("method", ("smote",))),
    )
    column_kinds = KINDS
    default_kind = None
    training_only = True
    touches_target = True

    def check_values(self) -> list[str]:
        strategy = self.values["sampling_strategy"]
        allowed = ("auto", "minority", "not minority", "not majority", "all", "majority")
        if isinstance(strategy, str) and strategy not in allowed:
            return [
                f"{self.label}: 'sampling_strategy' must be one of {', '.join(map(repr, allowed))} "
                f"or a number in (0, 1]; got {strategy!r}."
            ]
        if isinstance(strategy, float) and not 0 < strategy <= 1:
            return [
                f"{self.label}: 'sampling_strategy' as a ratio must be in (0, 1]; got {strategy:g}."
            ]
        return []

    def plan(self, schema: Schema, target: str | None) -> list[str]:
        if target is None:
            return [
                f"{self.label} balances the classes of the label, but the recipe names no "
                "label: add 'target: COLUMN' at the top of the recipe."
            ]
        problems = []
        if self.values["method"] == "smote":
            for col, kind in schema.kinds.items():
                if col != target and kind != NUMBER:
                    problems.append(
                        f"{self.label}: SMOTE needs number columns only; {col!r} holds {kind} "
                        "values. Encode or drop it before this step, or use method over or under."
                    )
        return problems

    def resolve(self, frame: Frame, target: str | None) -> None:
        self.columns = []

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        self.state["seed"] = ctx.seed

    def reads(self, frame_names: list[str]) -> list[str]:
        return []

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        if not ctx.training or ctx.target is None:
            return frame
        target = ctx.target
        if frame.missing(target).any():
            raise InvalidInput(
                f"{self.label}: the label {target!r} has {int(frame.missing(target).sum())} missing "
                "value(s); drop those rows first (impute with strategy: drop on the label)."
            )
        module, cls_name = _SAMPLERS[self.values["method"]]
        sampler_cls = getattr(require(module, "imbalanced-learn"), cls_name)
        options: dict[str, Any] = {
            "sampling_strategy": self.values["sampling_strategy"],
            "random_state": int(self.state.get("seed", 0)),
        }
        if self.values["method"] == "smote":
            options["k_neighbors"] = self.values["k_neighbors"]
        sampler = sampler_cls(**options)
        labels = _labels(frame, target)
        before = _counts(labels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.values["method"] == "smote":
                    out = self._smote(frame, sampler, labels, target)
                else:
                    rows, _ = sampler.fit_resample(np.arange(frame.n_rows).reshape(-1, 1), labels)
                    out = frame.take(np.asarray(rows[:, 0], dtype=np.int64))
        except ValueError as exc:
            raise InvalidInput(f"{self.label} cannot resample this data: {exc}") from None
        self.state.update(
            rows_before=frame.n_rows,
            rows_after=out.n_rows,
            classes_before=before,
            classes_after=_counts(_labels(out, target)),
        )
        return out

    def _smote(self, frame: Frame, sampler: Any, labels: np.ndarray, target: str) -> Frame:
        features = [n for n in frame.names if n != target]
        bad = [n for n in features if frame.kinds[n] != NUMBER]
        if bad:
            raise InvalidInput(
                f"{self.label}: SMOTE needs number columns only; {bad[0]!r} holds "
                f"{frame.kinds[bad[0]]} values. Encode or drop it first, or use method over or under."
            )
        X = frame.numbers(features)
        if np.isnan(X).any():
            col = features[int(np.flatnonzero(np.isnan(X).any(axis=0))[0])]
            raise InvalidInput(
                f"{self.label}: SMOTE needs values everywhere; {col!r} has missing ones. "
                "Impute them in an earlier step."
            )
        X_res, y_res = sampler.fit_resample(X, labels)
        # imbalanced-learn returns the original rows first, then the new ones.
        made = X_res.shape[0] - frame.n_rows
        columns = {n: np.ascontiguousarray(X_res[:, j]) for j, n in enumerate(features)}
        y_new = np.asarray(y_res)[frame.n_rows :]
        if frame.kinds[target] == NUMBER:
            y_all = np.concatenate([frame.columns[target], y_new.astype(np.float64)])
        else:
            y_all = np.concatenate([frame.columns[target], y_new.astype(object)])
        columns[target] = y_all
        ordered = {n: columns[n] for n in frame.names}
        index = np.concatenate([frame.index, np.full(made, -1, dtype=np.int64)])
        return Frame(ordered, dict(frame.kinds), index, dict(frame.types))


def _labels(frame: Frame, target: str) -> np.ndarray:
    values = frame.columns[target]
    return values if frame.kinds[target] == NUMBER else values.astype(str)


def _counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return {_label(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
