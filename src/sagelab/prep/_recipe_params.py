"""A recipe step's parameters as data: name, kind, default, allowed values; checked before fitting.

Every problem becomes one line of a :class:`RecipeError`, so a user fixing a
recipe sees everything wrong with it at once, each line naming the step, the
parameter or column, what was expected and what was given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sagelab.errors import InvalidSpec, closest

__all__ = ["Param", "ParamKind", "RecipeError", "check_params", "show_columns"]

ParamKind = Literal[
    "columns",  # a list of column names (one name is read as a list of one)
    "column",  # one column name
    "str",
    "int",
    "float",
    "bool",
    "int_or_fraction",  # an integer >= 1, or a fraction in (0, 1)
    "numbers",  # a list of numbers
    "scalars",  # a list of strings or numbers
    "int_pair",  # [low, high] integers
    "str_or_strings",  # one string or a list of strings
    "str_or_float",
    "scalar",  # a string, number or boolean
    "mappings",  # a list of mappings (validated by the step)
]

_NOUNS: dict[str, str] = {
    "columns": "a list of column names",
    "column": "a column name",
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "int_or_fraction": "an integer >= 1 or a fraction between 0 and 1",
    "numbers": "a list of numbers",
    "scalars": "a list of values",
    "int_pair": "a pair of integers [low, high]",
    "str_or_strings": "a string or a list of strings",
    "str_or_float": "a string or a number",
    "scalar": "a string, number or boolean",
    "mappings": "a list of mappings",
}


class RecipeError(InvalidSpec):
    """A recipe is wrong; ``problems`` lists one message per problem."""

    def __init__(self, problems: Sequence[str], what: str = "recipe") -> None:
        super().__init__(problems, what)


@dataclass(frozen=True)
class Param:
    """One parameter of a recipe step.

    Attributes:
        name: the key in the step's YAML mapping.
        kind: what values it takes (see :data:`ParamKind`).
        default: the value when it is not given (None: no value).
        required: it must be given.
        choices: the allowed values of a string.
        low, high: the inclusive range of a number.
        only_for: ``(other parameter, values)``: it applies only when the other
            parameter has one of these values (``n_neighbors`` only for ``knn``).
        help: one line for the documentation.
    """

    name: str
    kind: ParamKind
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    only_for: tuple[str, tuple[str, ...]] | None = None
    help: str = ""

    def describe(self) -> str:
        """The allowed values in words."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = _NOUNS[self.kind]
        if self.low is not None and self.high is not None:
            return f"{noun} in [{_num(self.low)}, {_num(self.high)}]"
        if self.low is not None:
            return f"{noun} >= {_num(self.low)}"
        return noun

    def coerce(self, value: Any) -> tuple[Any, str | None]:
        """``(value, None)`` converted to this parameter's kind, or ``(None, why not.)``."""
        kind = self.kind
        ok: Any = None
        if kind == "columns":
            if isinstance(value, str) and value:
                ok = [value]
            elif _list_of(value, str) and value and all(value):
                ok = list(value)
        elif kind == "column":
            ok = value if isinstance(value, str) and value else None
        elif kind == "str":
            ok = value if isinstance(value, str) else None
        elif kind == "int":
            ok = value if _is_int(value) else None
        elif kind == "float":
            ok = float(value) if _is_number(value) else None
        elif kind == "bool":
            ok = value if isinstance(value, bool) else None
        elif kind == "int_or_fraction":
            if _is_int(value) and value >= 1:
                ok = value
            elif _is_number(value) and 0 < value < 1:
                ok = float(value)
        elif kind == "numbers":
            ok = [float(v) for v in value] if _list_of(value, (int, float)) else None
        elif kind == "scalars":
            ok = list(value) if _list_of(value, (str, int, float, bool)) and value else None
        elif kind == "int_pair":
            if _list_of(value, int) and len(value) == 2 and value[0] >= 1 and value[0] <= value[1]:
                ok = [int(v) for v in value]
        elif kind == "str_or_strings":
            if isinstance(value, str) or (_list_of(value, str) and value):
                ok = value if isinstance(value, str) else list(value)
        elif kind == "str_or_float":
            if isinstance(value, str) or _is_number(value):
                ok = value if isinstance(value, str) else float(value)
        elif kind == "scalar":
            ok = value if isinstance(value, str | int | float) else None
        elif kind == "mappings":
            ok = list(value) if _list_of(value, dict) and value else None
        wrong = f"must be {self.describe()}; got {_show(value)}."
        if ok is None:
            return None, wrong
        if self.choices is not None and ok not in self.choices:
            return None, wrong + closest(str(ok), self.choices)
        if _is_number(ok) and (
            (self.low is not None and ok < self.low) or (self.high is not None and ok > self.high)
        ):
            return None, wrong
        return ok, None


def check_params(
    label: str, params: Sequence[Param], given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Check a step's given parameters against its declarations.

    Args:
        label: the step as the user knows it (``step 3 (scale)``), for messages.
        params: the step's declared parameters.
        given: the mapping from the recipe, without the ``step`` key.

    Returns:
        The parameters with defaults filled in, and one message per problem.
    """
    declared = {p.name: p for p in params}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in given:
        if key not in declared:
            problems.append(
                f"{label}: unknown parameter {key!r}.{closest(str(key), declared)} "
                f"Its parameters are {', '.join(declared) or 'none'}."
            )
    for p in params:
        if p.name not in given or given[p.name] is None:
            if p.required:
                problems.append(f"{label}: {p.name!r} is required ({p.describe()}).")
            values[p.name] = p.default
            continue
        value, why = p.coerce(given[p.name])
        if why is not None:
            problems.append(f"{label}: {p.name!r} {why}")
            continue
        values[p.name] = value
    for p in params:
        if p.only_for is None or p.name not in given or given[p.name] is None:
            continue
        other, allowed = p.only_for
        if values.get(other) not in allowed:
            which = " or ".join(repr(a) for a in allowed)
            problems.append(
                f"{label}: {p.name!r} applies only when {other!r} is {which}; "
                f"here {other!r} is {values.get(other)!r}. Remove it or change {other!r}."
            )
    return values, problems


def show_columns(names: Iterable[str], limit: int = 40) -> str:
    """Column names for a message: the first ``limit``, then how many more."""
    names = list(names)
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return (shown + more) if names else "(none)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _list_of(value: Any, types: type | tuple[type, ...]) -> bool:
    if not isinstance(value, list):
        return False
    allowed = types if isinstance(types, tuple) else (types,)
    # bool is an int to Python, but "yes" is not a number to a user.
    return all(
        isinstance(v, allowed) and (bool in allowed or not isinstance(v, bool)) for v in value
    )


def _num(value: float) -> str:
    return f"{value:g}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
