"""The contract every recipe step keeps, the contexts it runs in, and the registry of steps.

A step is fitted once on training data and then transforms any data the same
way. Its fitted state is two things: plain values (bounds, column lists) kept
as JSON, and scikit-learn / imbalanced-learn estimators kept with skops; see
:mod:`sagelab.prep._recipe_artifact`.

**Row independence.** ``transform`` must give each row the same result
whatever other rows come with it, so a recipe applied to one row at serving
time gives exactly what it gave that row in a batch. Elementwise work keeps
this for free. Work that sums across a row's features (a projection, a
regression, a distance) does not when it goes through BLAS, whose summation
order depends on the number of rows; such steps sum column by column
(:func:`rowwise_dot`) or call their estimator one row at a time
(:func:`per_row`).
"""

from __future__ import annotations

import abc
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from sagelab._imports import require as _require
from sagelab.errors import closest
from sagelab.prep._recipe_frame import KINDS, NUMBER, Frame, Schema
from sagelab.prep._recipe_params import Param, RecipeError, check_params, show_columns

__all__ = [
    "STEP_NAMES",
    "ApplyContext",
    "FitContext",
    "Step",
    "finite",
    "per_row",
    "require",
    "rowwise_dot",
    "step_class",
]

#: Step name -> "module:Class", imported when a recipe uses it.
_STEPS: dict[str, str] = {
    "drop_columns": "sagelab.prep._recipe_clean:DropColumns",
    "deduplicate": "sagelab.prep._recipe_clean:Deduplicate",
    "validate": "sagelab.prep._recipe_validate:Validate",
    "impute": "sagelab.prep._recipe_impute:Impute",
    "outliers": "sagelab.prep._recipe_clean:Outliers",
    "scale": "sagelab.prep._recipe_numeric:Scale",
    "bin": "sagelab.prep._recipe_numeric:Bin",
    "polynomial": "sagelab.prep._recipe_numeric:Polynomial",
    "interactions": "sagelab.prep._recipe_numeric:Interactions",
    "pca": "sagelab.prep._recipe_numeric:Pca",
    "encode": "sagelab.prep._recipe_encode:Encode",
    "datetime": "sagelab.prep._recipe_encode:DatetimeParts",
    "text": "sagelab.prep._recipe_encode:Text",
    "resample": "sagelab.prep._recipe_clean:Resample",
}
STEP_NAMES: tuple[str, ...] = tuple(_STEPS)


def step_class(name: str) -> type[Step] | None:
    """The class of a step by name, or None when there is no such step."""
    target = _STEPS.get(name)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    cls: type[Step] = getattr(importlib.import_module(module), attr)
    return cls


def unknown_step_message(label: str, name: Any) -> str:
    """The message for a step name that is not known, with a suggestion."""
    return (
        f"{label}: unknown step {name!r}.{closest(str(name), STEP_NAMES)} "
        f"The steps are {', '.join(STEP_NAMES)}."
    )


def require(module: str, package: str) -> ModuleType:
    """Import an optional package on first use, so ``import sagelab.prep`` stays light.

    Raises:
        ImportError: the package is missing; the message says how to install it.
    """
    return _require(module, "sagelab's preparation recipes", package, "prep")


# ------------------------------------------------------------------------------ contexts
@dataclass
class FitContext:
    """What a step may know while it is fitted.

    Attributes:
        seed: the recipe's random seed, for every estimator that draws numbers.
        target: the label column, if the recipe has one.
    """

    seed: int = 0
    target: str | None = None


@dataclass
class ApplyContext:
    """What a transform reports back, and what it carries from batch to batch.

    Attributes:
        training: True while the recipe is being fitted (training-only steps run).
        target: the label column, when it is present in the data.
        source: the data as given, to copy rejected rows from.
        offset: added to row positions in reports (the rows of earlier batches).
        rejects: one record per row that failed a validation rule.
        dropped: step index -> rows the step removed.
        seen: hashes of rows kept so far, for de-duplication across batches.
    """

    training: bool = False
    target: str | None = None
    source: pa.Table | None = None
    offset: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[tuple[int, int]]] = field(default_factory=dict)

    def drop(self, step: Step, frame: Frame, keep: np.ndarray) -> Frame:
        """The frame without the rows ``keep`` is False for, counted for ``step``."""
        removed = int(keep.shape[0] - np.count_nonzero(keep))
        if not removed:
            return frame
        self.dropped[step.index] = self.dropped.get(step.index, 0) + removed
        return frame.take(keep)

    def reject(
        self,
        step: Step,
        frame: Frame,
        rows: np.ndarray,
        failures: list[dict[str, Any]],
    ) -> None:
        """Record rows that failed a rule: ``failures[i]`` describes ``rows[i]`` (frame positions)."""
        positions = frame.index[rows]
        raw: list[dict[str, Any] | None] = [None] * len(failures)
        if self.source is not None:
            valid = [i for i, p in enumerate(positions) if p >= 0]
            taken = self.source.take(pa.array(positions[valid], type=pa.int64())).to_pylist()
            for i, row in zip(valid, taken, strict=True):
                raw[i] = row
        for position, failure, row in zip(positions, failures, raw, strict=True):
            self.rejects.append(
                {
                    "row": int(position) + self.offset if position >= 0 else None,
                    "step": step.index,
                    "step_name": step.name,
                    **failure,
                    "raw": json.loads(json.dumps(row, default=str)) if row is not None else None,
                }
            )


# ------------------------------------------------------------------------------ the contract
class Step(abc.ABC):
    """One step of a recipe: checked before fitting, fitted once, then applied the same way.

    Subclasses declare ``name`` and ``params`` and implement :meth:`fit` and
    :meth:`transform`. Invariants: ``transform`` treats each row on its own (see
    the module docstring), never changes the fitted state, and a step fitted on
    a frame then transforming it gives what it gives that frame later.

    Attributes:
        index: the step's position in the recipe, from 1.
        values: its parameters, checked, with defaults filled in.
        columns: the columns it works on, resolved when it is fitted.
        state: fitted values kept as JSON.
        estimators: fitted estimators kept with skops.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    #: The kinds its columns may have.
    column_kinds: ClassVar[tuple[str, ...]] = (NUMBER,)
    #: The kind of column it takes when ``columns`` is omitted (None: they must be named).
    default_kind: ClassVar[str | None] = NUMBER
    #: Runs only while fitting (resampling); never at inference.
    training_only: ClassVar[bool] = False
    #: May name the label column (its work is skipped when the label is absent).
    touches_target: ClassVar[bool] = False

    def __init__(self, index: int, values: Mapping[str, Any]) -> None:
        self.index = index
        self.values = dict(values)
        cols = self.values.get("columns")
        self.columns: list[str] = list(cols) if isinstance(cols, list) else []
        self.state: dict[str, Any] = {}
        self.estimators: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return f"step {self.index} ({self.name})"

    @classmethod
    def parse(cls, index: int, given: Mapping[str, Any]) -> tuple[Step, list[str]]:
        """A step from its recipe mapping, and the problems with its parameters."""
        label = f"step {index} ({cls.name})"
        values, problems = check_params(label, cls.params, given)
        step = cls(index, values)
        if not problems:
            problems = step.check_values()
        return step, problems

    def check_values(self) -> list[str]:
        """Problems between parameter values that the declarations cannot express."""
        return []

    def spec_values(self) -> dict[str, Any]:
        """The parameters as a recipe would write them: set, and applicable."""
        out = {}
        for p in self.params:
            value = self.values.get(p.name)
            if value is None:
                continue
            if p.only_for is not None and self.values.get(p.only_for[0]) not in p.only_for[1]:
                continue
            out[p.name] = value
        return out

    # -------------------------------------------------------------- before fitting
    def preferred_kind(self, col: str) -> str | None:
        """The kind this step wants a column of nulls only read as (None: no preference)."""
        return self.column_kinds[0] if len(self.column_kinds) < len(KINDS) else None

    def named_columns(self) -> list[str]:
        """The columns the recipe names for this step (before any data is seen)."""
        return list(self.columns)

    def plan(self, schema: Schema, target: str | None) -> list[str]:
        """Check the step against the columns it will see, and change ``schema`` as it will.

        Returns:
            One message per problem.
        """
        problems = self.check_columns(self.named_columns(), schema, target)
        if not problems:
            self.plan_outputs(schema, target)
        return problems

    def check_columns(self, names: list[str], schema: Schema, target: str | None) -> list[str]:
        """Each named column exists, is of a kind this step takes, and is not the label."""
        problems = []
        for col in names:
            if not schema.has(col):
                problems.append(self.missing_column(col, list(schema.kinds)))
                continue
            kind = schema.kind(col)
            if kind is not None and kind not in self.column_kinds:
                problems.append(self.wrong_kind(col, kind))
            if col == target and not self.touches_target:
                problems.append(
                    f"{self.label} names the label column {col!r}; a recipe leaves the label "
                    "as it is (it is absent at inference). Remove it from the step."
                )
        return problems

    def plan_outputs(self, schema: Schema, target: str | None) -> None:  # noqa: B027
        """Change ``schema`` as the step will change the columns (default: nothing)."""

    def missing_column(self, col: str, existing: list[str]) -> str:
        """The message for a column that is not there when the step runs."""
        return (
            f"{self.label} names the column {col!r}, which does not exist at that point."
            f"{closest(col, existing)} Columns there: {show_columns(existing)}."
        )

    def wrong_kind(self, col: str, kind: str) -> str:
        """The message for a column of a kind the step does not take."""
        takes = " or ".join(self.column_kinds)
        hint = {
            "string": " Encode it first (an encode step), or validate it with type: number.",
            "datetime": " Split it into numbers first (a datetime step).",
        }.get(kind, "")
        return f"{self.label} needs {takes} columns; {col!r} holds {kind} values.{hint}"

    # -------------------------------------------------------------- fitting
    def resolve(self, frame: Frame, target: str | None) -> None:
        """Fix the step's columns against the real data: the named ones, or every column of
        :attr:`default_kind` but the label.

        Raises:
            RecipeError: a named column is missing or of the wrong kind.
        """
        if not self.columns and self.default_kind is not None:
            self.columns = frame.names_of(self.default_kind, exclude=[target] if target else [])
            if not self.columns:
                raise RecipeError(
                    [
                        f"{self.label} names no columns, and there is no {self.default_kind} "
                        f"column to take (the label aside). Columns there: "
                        f"{show_columns(frame.names)}."
                    ]
                )
        problems = []
        for col in self.columns:
            if col not in frame.kinds:
                problems.append(self.missing_column(col, frame.names))
            elif frame.kinds[col] not in self.column_kinds:
                problems.append(self.wrong_kind(col, frame.kinds[col]))
        if problems:
            raise RecipeError(problems)

    @abc.abstractmethod
    def fit(self, frame: Frame, ctx: FitContext) -> None:
        """Learn the step's state from training data (its columns already resolved).

        Raises:
            InvalidInput: the data cannot be fitted (no values, a wrong value...).
        """

    @abc.abstractmethod
    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        """The frame after this step (may be changed in place and returned).

        Raises:
            InvalidInput: the data cannot be transformed as fitted.
        """

    def reads(self, frame_names: list[str]) -> list[str]:
        """The columns the step reads (the data must have them at inference)."""
        return list(self.columns)

    # -------------------------------------------------------------- persistence
    def get_state(self) -> dict[str, Any]:
        """The fitted state as JSON values."""
        return {"columns": list(self.columns), **self.state}

    def set_state(self, state: Mapping[str, Any], estimators: Mapping[str, Any]) -> None:
        """Restore what :meth:`get_state` and :attr:`estimators` held."""
        self.columns = [str(c) for c in state.get("columns", [])]
        self.state = {k: v for k, v in state.items() if k != "columns"}
        self.estimators = dict(estimators)


# ------------------------------------------------------------------------------ helpers
def finite(values: np.ndarray) -> np.ndarray:
    """A copy with ±infinity as NaN: scikit-learn refuses infinity, and a missing value it handles."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[np.isinf(out)] = np.nan
    return out


def rowwise_dot(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``X @ W.T`` summed feature by feature, so each row's result never depends on the others."""
    out = np.zeros((X.shape[0], W.shape[0]), dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(X.shape[1]):
            out += X[:, j : j + 1] * W[:, j]
    return out


def per_row(fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X`` with ``fn`` applied to each of the given rows alone (a one-row matrix each)."""
    out = X.copy()
    for r in np.flatnonzero(rows) if rows.dtype == bool else rows:
        out[r] = fn(X[r : r + 1])[0]
    return out
