"""Run one scikit-learn metric so that an undefined value becomes ``None`` with a reason."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["guarded"]


def guarded(
    notes: dict[str, str],
    name: str,
    fn: Callable[..., Any],
    *args: Any,
    undefined: str = "",
    **kwargs: Any,
) -> float | None:
    """``fn(*args, **kwargs)`` as a float, or ``None`` with ``notes[name]`` saying why.

    Input has been checked before any metric runs, so what can still go wrong here is
    the data making a metric undefined (one class only, nothing predicted positive):
    scikit-learn answers with NaN, a warning or a ``ValueError``. Each becomes ``None``
    and a note instead of a crash, so the other metrics still reach the user.

    Args:
        notes: where the reason goes, under ``name``.
        name: the metric's name.
        fn: the scikit-learn metric function.
        undefined: the reason to give when the result is NaN (else scikit-learn's words).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(fn(*args, **kwargs))
        except ValueError as exc:
            notes[name] = undefined or str(exc)
            return None
    if not math.isfinite(value):
        said = "; ".join(str(w.message) for w in caught)
        notes[name] = undefined or said or f"{name} is undefined for this data."
        return None
    return value
