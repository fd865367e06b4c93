"""Hyperparameters as data: name, type, range, default, help; validated before any work starts.

SageMaker passes every hyperparameter as a string (``"eta": "0.3"``), so values
are coerced from strings too; the messages follow scikit-learn's: the thing,
what was expected, what was got.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sagelab.errors import InvalidInput, closest

__all__ = ["Hyperparameter", "HyperparameterError", "validate_hyperparameters"]

Kind = Literal["int", "float", "str", "bool"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class HyperparameterError(InvalidInput):
    """One or more hyperparameters are wrong; ``problems`` lists one message per problem."""

    def __init__(self, algorithm: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} hyperparameter problem(s) for {algorithm}:\n{lines}"
        )


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of an algorithm.

    Attributes:
        name: SageMaker's name for it (``num_round``, ``eta``).
        kind: ``int``, ``float``, ``str`` or ``bool``.
        default: the value used when it is not given (None with ``required``).
        low, high: the inclusive range of a number (None: unbounded on that side).
        low_open, high_open: whether that end is excluded (``eta`` in (0, 1]).
        choices: the allowed values of a string.
        required: it must be given.
        help: one line for ``sagelab algorithms show``.
        tunable: whether automatic model tuning may search it.
    """

    name: str
    kind: Kind
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    required: bool = False
    help: str = ""
    tunable: bool = True

    def describe_range(self) -> str:
        """The allowed values in words: ``an integer in [1, 100]``."""
        if self.kind == "bool":
            return "a boolean (true or false)"
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = {"int": "an integer", "float": "a number", "str": "a string"}[self.kind]
        if self.low is None and self.high is None:
            return noun
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        return f"{noun} in {left}{low}, {high}{right}"

    def coerce(self, value: Any, algorithm: str) -> Any:
        """The value converted to this hyperparameter's type and checked against its range.

        Raises:
            InvalidInput: naming the algorithm, the hyperparameter, what was expected and got.
        """
        expected = f"The {self.name!r} hyperparameter of {algorithm} must be {self.describe_range()}. Got {value!r}."
        converted = self._convert(value)
        if converted is None:
            raise InvalidInput(expected)
        if self.choices is not None and converted not in self.choices:
            raise InvalidInput(expected + closest(str(converted), self.choices))
        if self.kind in ("int", "float"):
            if isinstance(converted, float) and not math.isfinite(converted):
                raise InvalidInput(expected)
            if self.low is not None and (
                converted < self.low or (self.low_open and converted == self.low)
            ):
                raise InvalidInput(expected)
            if self.high is not None and (
                converted > self.high or (self.high_open and converted == self.high)
            ):
                raise InvalidInput(expected)
        return converted

    def _convert(self, value: Any) -> Any:
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            return True if text in _TRUE else False if text in _FALSE else None
        if self.kind == "int":
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            try:
                as_float = float(str(value).strip())
            except ValueError:
                return None
            return int(as_float) if as_float.is_integer() else None
        if self.kind == "float":
            if isinstance(value, bool):
                return None
            try:
                return (
                    float(str(value).strip())
                    if not isinstance(value, int | float)
                    else float(value)
                )
            except ValueError:
                return None
        return (
            value
            if isinstance(value, str)
            else str(value)
            if isinstance(value, int | float)
            else None
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Type": {
                "int": "Integer",
                "float": "Continuous",
                "str": "Categorical",
                "bool": "Categorical",
            }[self.kind],
            "Range": self.describe_range(),
            "DefaultValue": self.default,
            "IsRequired": self.required,
            "IsTunable": self.tunable,
            "Description": self.help,
        }


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def validate_hyperparameters(
    algorithm: str, specs: Sequence[Hyperparameter], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Every hyperparameter of ``specs`` with its value: given ones checked, defaults filled in.

    Raises:
        HyperparameterError: one message per problem (unknown names with a suggestion,
            wrong types, out-of-range values, missing required ones).
    """
    by_name = {s.name: s for s in specs}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, value in given.items():
        spec = by_name.get(name)
        if spec is None:
            problems.append(
                f"{name!r} is not a hyperparameter of {algorithm}.{closest(name, by_name)} "
                f"Known: {', '.join(sorted(by_name))}."
            )
            continue
        try:
            values[name] = spec.coerce(value, algorithm)
        except InvalidInput as exc:
            problems.append(str(exc))
    for spec in specs:
        if spec.name in values or spec.name in given:
            continue
        if spec.required:
            problems.append(
                f"The {spec.name!r} hyperparameter of {algorithm} is required: give {spec.describe_range()}."
            )
        else:
            values[spec.name] = spec.default
    if problems:
        raise HyperparameterError(algorithm, problems)
    return values
