"""Holdout splits and k folds: stratified for classifiers, time-ordered on request, seeded.

Both work on the labels (and the split column) alone, so they serve streamed and
in-memory channels alike, and the same seed and data always give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagelab.errors import InvalidInput

__all__ = ["Split", "holdout_split", "kfold_assignments"]

_CLASSIFIERS = ("binary_classifier", "multiclass_classifier")


@dataclass(frozen=True)
class Split:
    """A holdout split of the train channel: ``validation[i]`` is True for held-out rows."""

    validation: np.ndarray
    method: str
    fraction: float
    seed: int
    split_by: str | None = None
    cutoff: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Method": self.method,
            "HoldoutFraction": self.fraction,
            "Seed": self.seed,
            "TrainRows": int((~self.validation).sum()),
            "ValidationRows": int(self.validation.sum()),
        }
        if self.split_by is not None:
            out["SplitBy"] = self.split_by
            out["Cutoff"] = self.cutoff
        return out


def _count(n: int, fraction: float) -> int:
    return round(n * fraction)


def holdout_split(
    y: np.ndarray,
    *,
    fraction: float,
    problem_type: str,
    seed: int,
    split_values: pa.Array | None = None,
    split_by: str | None = None,
) -> Split:
    """Hold out ``fraction`` of the rows as the validation channel.

    * With ``split_values``: time-ordered; the rows with the latest values are held out,
      and rows sharing the cutoff value stay together on the train side.
    * Classifiers: stratified; each class keeps its share on both sides (a class with a
      single row stays in train).
    * Otherwise: a seeded random sample.

    Raises:
        InvalidInput: a fraction outside (0, 1), too few rows, or a split column with too
            few distinct values to hold anything out.
    """
    if not 0 < fraction < 1:
        raise InvalidInput(f"The holdout fraction must be in (0, 1); got {fraction!r}.")
    n = int(y.shape[0])
    if n < 2:
        raise InvalidInput(
            f"The train channel has {n} row; a validation split needs at least 2. Give a "
            "validation channel, or more data."
        )
    mask = np.zeros(n, dtype=bool)
    if split_values is not None:
        order = np.asarray(pc.sort_indices(split_values).to_numpy(), dtype=np.int64)
        keep = max(1, n - max(1, _count(n, fraction)))
        cutoff = split_values[int(order[keep - 1])]
        mask = np.asarray(
            pc.greater(split_values, cutoff).to_numpy(zero_copy_only=False), dtype=bool
        )
        if not mask.any() or mask.all():
            raise InvalidInput(
                f"Splitting by {split_by!r} held out no rows: the latest {fraction:.0%} of the "
                "rows share one value. Split by a finer column, or give a validation channel."
            )
        return Split(mask, "time", fraction, seed, split_by, str(cutoff.as_py()))
    rng = np.random.default_rng(seed)
    if problem_type in _CLASSIFIERS:
        for cls in np.unique(y):
            members = np.flatnonzero(y == cls)
            if members.size < 2:
                continue
            take = min(members.size - 1, max(1, _count(members.size, fraction)))
            mask[rng.permutation(members)[:take]] = True
        method = "stratified"
        if not mask.any():
            raise InvalidInput(
                "Every class of the train channel has a single row, so none can be held out "
                "for validation; give a validation channel, or more data."
            )
    else:
        take = min(n - 1, max(1, _count(n, fraction)))
        mask[rng.permutation(n)[:take]] = True
        method = "random"
    return Split(mask, method, fraction, seed)


def kfold_assignments(y: np.ndarray, *, k: int, problem_type: str, seed: int) -> np.ndarray:
    """The fold (0..k-1) of every row: stratified for classifiers, seeded.

    Raises:
        InvalidInput: ``k`` below 2 or above the number of rows.
    """
    n = int(y.shape[0])
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InvalidInput(f"Cross-validation needs at least 2 folds; got {k!r}.")
    if k > n:
        raise InvalidInput(f"Cross-validation with {k} folds needs at least {k} rows; got {n}.")
    rng = np.random.default_rng(seed)
    folds = np.empty(n, dtype=np.int64)
    if problem_type in _CLASSIFIERS:
        start = 0
        for cls in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == cls))
            # Continue the round-robin where the previous class stopped, so small classes
            # do not all land in fold 0 and the folds stay the same size.
            folds[members] = (start + np.arange(members.size)) % k
            start = (start + members.size) % k
    else:
        folds[rng.permutation(n)] = np.arange(n) % k
    return folds
