"""An inference pipeline's steps as a worker runs them, and how each must fit the next.

Each step's ``run`` takes the previous step's output (the request's rows for the
first) and gives its own: a recipe an Arrow table of the columns it writes (its
label aside), the model a :class:`~sagelab.algorithms.Prediction`, a Labels step
:class:`Labelled` rows, a script whatever rows its function returns. A caller's
mistake is a :class:`~sagelab.serving._codec.BadRequest` that names the step and
the row; anything else a step raises is the model's or the script's fault.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sagelab.algorithms import Prediction
from sagelab.errors import InvalidInput
from sagelab.serving._codec import BadRequest

if TYPE_CHECKING:
    from sagelab.algorithms import Algorithm
    from sagelab.prep import FittedRecipe

__all__ = [
    "Labelled",
    "LabelsStep",
    "ModelStep",
    "RecipeStep",
    "ScriptStep",
    "Step",
    "array_of",
    "chain_problems",
    "positional",
]


@dataclass
class Labelled:
    """What a Labels step gives: a label per row, and the scores when they are kept."""

    labels: list[Any]
    scores: np.ndarray | None


@dataclass
class Step(abc.ABC):
    """A step loaded to serve: ``run`` takes the previous step's output (or the request's
    rows) and gives its own."""

    index: int  # from 1
    name: str

    @property
    def what(self) -> str:
        return f"step {self.index} ({self.name!r})"

    @abc.abstractmethod
    def run(self, value: Any) -> Any:
        """This step's output for the previous step's."""


@dataclass
class RecipeStep(Step):
    """A fitted recipe: an Arrow table in, the columns it writes out, every row kept.

    Raises (from ``run``):
        BadRequest: a value it cannot read, or a row it removes (named, with why).
    """

    recipe: FittedRecipe

    @property
    def what(self) -> str:
        return f"step {self.index} (recipe {self.recipe.name!r} v{self.recipe.version})"

    @property
    def features(self) -> list[str]:
        """What it writes, its label aside (the label is never sent at serving time)."""
        label = self.recipe.target.name if self.recipe.target is not None else None
        return [c for c in self.recipe.output_columns if c != label]

    def run(self, table: pa.Table) -> pa.Table:
        try:
            result = self.recipe.transform_with_report(table)
        except InvalidInput as exc:
            raise BadRequest(f"At {self.what}: {exc}") from None
        kept = result.row_index
        if result.rows_out != table.num_rows or not np.array_equal(kept, np.arange(len(kept))):
            raise BadRequest(self._dropped(table.num_rows, kept, result.rejects, result.dropped))
        return result.table.select(self.features)

    def _dropped(
        self, rows: int, kept: np.ndarray, rejects: list[dict[str, Any]], dropped: list[Any]
    ) -> str:
        gone = sorted(set(range(rows)) - {int(i) for i in kept})
        reasons = {
            int(r["row"]): str(r.get("reason", "")) for r in rejects if r.get("row") is not None
        }
        shown = [f"row {r + 1}" + (f" ({reasons[r]})" if reasons.get(r) else "") for r in gone[:10]]
        more = f" and {len(gone) - 10} more" if len(gone) > 10 else ""
        by = ", ".join(f"{d['name']} (recipe step {d['step']})" for d in dropped)
        return (
            f"At {self.what}, {by or 'the recipe'} removed {', '.join(shown)}{more}. The "
            "pipeline answers one prediction per row, so it does not serve rows its recipe "
            "removes; correct those rows or leave them out."
        )


@dataclass
class ModelStep(Step):
    """The model: a float matrix (or a recipe's table, read in the model's feature order)
    in, its :class:`~sagelab.algorithms.Prediction` out.

    Raises (from ``run``):
        BadRequest: rows the model refuses as input (``InvalidInput``).
    """

    reference: str
    algorithm: Algorithm
    problem_type: str

    @property
    def what(self) -> str:
        return f"step {self.index} (model {self.reference!r})"

    @property
    def feature_names(self) -> list[str]:
        return list(getattr(self.algorithm, "feature_names", None) or [])

    def run(self, value: np.ndarray | pa.Table) -> Prediction:
        X = _matrix(value, self.feature_names) if isinstance(value, pa.Table) else value
        try:
            return self.algorithm.predict(X)
        except InvalidInput as exc:
            raise BadRequest(f"At {self.what}: {exc}") from None


@dataclass
class LabelsStep(Step):
    """Scores to labels: one score per row by ``threshold`` (above it: ``labels[1]``), a
    row of class probabilities by its most probable class.

    Raises (from ``run``):
        ValueError: scores that are not numbers, or do not fit the labels (a 5xx: the
            pipeline's fault, not the caller's).
    """

    labels: list[Any]
    threshold: float
    keep_score: bool

    def run(self, value: Any) -> Labelled:
        try:
            scores = np.asarray(array_of(value), dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{self.what} maps numbers to labels; it got {value!r:.80}") from None
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim == 1:
            if len(self.labels) != 2:
                raise ValueError(
                    f"{self.what} has {len(self.labels)} labels but got one score per row, "
                    "which needs two (below and above the threshold)"
                )
            chosen = (scores > self.threshold).astype(np.int64)
            kept = scores
        elif scores.ndim == 2 and scores.shape[1] == len(self.labels):
            chosen = np.argmax(scores, axis=1)
            kept = scores[np.arange(scores.shape[0]), chosen]
        else:
            raise ValueError(
                f"{self.what} has {len(self.labels)} labels but got scores shaped "
                f"{scores.shape}; a row of class probabilities needs one label per class"
            )
        labels = [self.labels[i] for i in chosen.tolist()]
        return Labelled(labels, kept if self.keep_score else None)


@dataclass
class ScriptStep(Step):
    """A user's function on the previous step's output array; one row out per row in.

    Raises (from ``run``):
        ValueError: the function returned another number of rows; anything the function
            raises propagates.
    """

    target: str
    function: Callable[[Any], Any]

    def run(self, value: Any) -> Any:
        given = array_of(value)
        out = self.function(given)
        if isinstance(out, Prediction):
            rows = len(out.values)
        else:
            out = np.asarray(out)
            rows = out.shape[0] if out.ndim else -1
        if rows != len(given):
            raise ValueError(
                f"The script {self.target!r} of {self.what} returned {rows if rows >= 0 else 'no'} "
                f"row(s) for {len(given)}; it must return one row per row it is given."
            )
        return out


def array_of(value: Any) -> np.ndarray:
    """A step's output as the array the next step's function sees."""
    if isinstance(value, Prediction):
        return np.asarray(value.probabilities if value.probabilities is not None else value.values)
    if isinstance(value, Labelled):
        return np.array(value.labels, dtype=object)
    return np.asarray(value)


def _matrix(table: pa.Table, features: list[str]) -> np.ndarray:
    """The recipe's columns as the model's float matrix (missing values as NaN)."""
    import pyarrow.compute as pc

    X = np.empty((table.num_rows, len(features)), dtype=np.float64)
    for c, name in enumerate(features):
        X[:, c] = pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
    return X


def positional(names: Sequence[str]) -> bool:
    return all(n == f"f{i}" for i, n in enumerate(names))


# ------------------------------------------------------------------------------ fitting together
def chain_problems(steps: list[Step], *, probe: bool) -> list[str]:
    """Where a step's output is not what the next one reads."""
    at, model = next((i, s) for i, s in enumerate(steps) if isinstance(s, ModelStep))
    recipes = [s for s in steps[:at] if isinstance(s, RecipeStep)]
    problems = []
    for before, after in itertools.pairwise(recipes):
        missing = [c for c in after.recipe.input_columns if c not in before.features]
        if missing:
            problems.append(
                f"{_cap(after.what)} reads {len(missing)} column(s) that {before.what} does not "
                f"write: {_show(missing)}. It writes: {_show(before.features)}."
            )
    if recipes:
        problems += _feature_problems(recipes[-1], model)
    following = steps[at + 1] if at + 1 < len(steps) else None
    if isinstance(following, LabelsStep):
        problems += _labels_problems(following, model, probe=probe)
    return problems


def _feature_problems(recipe: RecipeStep, model: ModelStep) -> list[str]:
    writes, takes = recipe.features, model.feature_names
    fix = (
        "The last recipe before the model must write exactly the model's features, in its "
        "order (the label aside): train the model on that recipe's output."
    )
    problems = []
    if writes != takes:
        if takes and positional(takes):
            problems.append(
                f"{_cap(model.what)} knows its {len(takes)} features by position only (f0, f1, "
                f"...), so the columns {recipe.what} writes cannot be matched to them. {fix}"
            )
        elif set(writes) != set(takes):
            missing = [c for c in takes if c not in writes]
            extra = [c for c in writes if c not in takes]
            parts = [f"does not write the feature(s) {_show(missing)}"] if missing else []
            parts += [f"writes column(s) the model does not take: {_show(extra)}"] if extra else []
            problems.append(
                f"{_cap(recipe.what)} {' and '.join(parts)} ({model.what} takes {len(takes)} "
                f"features; the recipe writes {len(writes)} columns). {fix}"
            )
        else:
            i = next(i for i, (w, t) in enumerate(zip(writes, takes, strict=True)) if w != t)
            problems.append(
                f"{_cap(recipe.what)} writes the model's features in another order: its column "
                f"{i + 1} is {writes[i]!r}, where {model.what} takes {takes[i]!r}. {fix}"
            )
    kinds = {c.name: c.kind for c in recipe.recipe.outputs}
    text = [c for c in writes if kinds.get(c) != "number"]
    if text:
        problems.append(
            f"{_cap(recipe.what)} writes {_show(text)} as {kinds[text[0]]} values; the model "
            "takes numbers. Encode them in the recipe (step: encode)."
        )
    return problems


def _labels_problems(labels: LabelsStep, model: ModelStep, *, probe: bool) -> list[str]:
    label = f"Step {labels.index} (Labels)"
    classes = _classes(model) if probe else None
    if classes is None and model.problem_type == "multiclass_classifier":
        return []  # the class count is checked on the first request
    if classes in (None, 1):
        problems = []
        if len(labels.labels) != 2:
            problems.append(
                f"{label}: Labels has {len(labels.labels)} entries, but {model.what} gives one "
                f"score per row ({model.problem_type or 'a score'}): give two labels, for scores "
                "at or below the Threshold and above it."
            )
        if model.problem_type == "binary_classifier" and not 0 <= labels.threshold <= 1:
            problems.append(
                f"{label}: Threshold is {labels.threshold}, outside [0, 1] where a binary "
                "classifier's scores are, so every row would get the same label."
            )
        return problems
    if len(labels.labels) != classes:
        return [
            f"{label}: Labels has {len(labels.labels)} entries, but {model.what} gives the "
            f"probabilities of {classes} classes: give {classes} labels, one per class in class "
            f"order (0 to {classes - 1})."
        ]
    return []


def _classes(model: ModelStep) -> int | None:
    """How many class probabilities the model gives per row (1: one score), when a row of
    zeros tells; None when it cannot be asked."""
    count = len(model.feature_names)
    if not count:
        return None
    try:
        prediction = model.algorithm.predict(np.zeros((1, count)))
    except Exception:  # a model that refuses zeros: the shape is checked when serving
        return None
    if prediction.probabilities is not None:
        return int(np.asarray(prediction.probabilities).shape[1])
    return 1


def _show(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
