"""Validation rules for corrupt data; rows that fail one are rejected with the rule that failed.

A rule names a column and one or more checks, tried in this order::

    - step: validate
      rules:
        - {column: air_time, type: number}           # parse text as numbers
        - {column: dep_delay, min: -120, max: 1500}  # inclusive range
        - {column: origin, allowed: [EWR, JFK, LGA]}
        - {column: tailnum, pattern: "N[0-9A-Z]+"}   # the whole value must match
        - {column: carrier, not_null: true}

A missing value passes every check but ``not_null``: missing is not corrupt,
and an impute step decides what to do with it. ``type`` also converts the
column (text ``"12"`` becomes the number 12) for the steps that follow.
A rejected row is reported with its position, the rule, the value and the
row as given, and goes to the error location of the run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from sagelab.errors import closest
from sagelab.prep._recipe_frame import (
    DATETIME,
    KINDS,
    NUMBER,
    STRING,
    Frame,
    Schema,
    parse_datetimes,
)
from sagelab.prep._recipe_params import Param
from sagelab.prep._recipe_step import ApplyContext, FitContext, Step

__all__ = ["Validate"]

_CHECKS = ("type", "not_null", "min", "max", "allowed", "pattern")
_TYPES = {
    "number": NUMBER,
    "integer": NUMBER,
    "boolean": NUMBER,
    "string": STRING,
    "datetime": DATETIME,
}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class Validate(Step):
    """Reject rows whose values break a rule (range, allowed values, pattern, type, not null)."""

    name = "validate"
    params = (Param("rules", "mappings", required=True, help="A list of rules, one per column."),)
    column_kinds = KINDS
    default_kind = None
    touches_target = True

    def check_values(self) -> list[str]:
        problems = []
        for i, rule in enumerate(self.values["rules"], start=1):
            where = f"{self.label}, rule {i}"
            for key in rule:
                if key != "column" and key not in _CHECKS:
                    problems.append(
                        f"{where}: unknown check {key!r}.{closest(str(key), _CHECKS)} "
                        f"The checks are {', '.join(_CHECKS)}."
                    )
            if not isinstance(rule.get("column"), str) or not rule.get("column"):
                problems.append(f"{where}: 'column' (the column to check) is required.")
            if not any(k in rule for k in _CHECKS):
                problems.append(f"{where}: give at least one check ({', '.join(_CHECKS)}).")
            problems.extend(_check_rule(where, rule))
        return problems

    def preferred_kind(self, col: str) -> str | None:
        for rule in self.values["rules"]:
            if rule["column"] == col and rule.get("type") in _TYPES:
                return _TYPES[rule["type"]]
            if rule["column"] == col and "pattern" in rule:
                return STRING
            if rule["column"] == col and ("min" in rule or "max" in rule):
                return NUMBER
        return None

    def named_columns(self) -> list[str]:
        return [r["column"] for r in self.values["rules"]]

    def plan(self, schema: Schema, target: str | None) -> list[str]:
        problems = []
        for i, rule in enumerate(self.values["rules"], start=1):
            col = rule["column"]
            if not schema.has(col):
                problems.append(
                    self.missing_column(col, list(schema.kinds)).replace(
                        self.label, f"{self.label}, rule {i},", 1
                    )
                )
                continue
            kind = _TYPES.get(rule.get("type", ""), schema.kind(col))
            where = f"{self.label}, rule {i} ({col!r})"
            if ("min" in rule or "max" in rule) and kind not in (NUMBER, None):
                problems.append(
                    f"{where}: min and max apply to numbers; the column holds {kind} values. "
                    "Add type: number to read it as numbers."
                )
            if "pattern" in rule and kind not in (STRING, None):
                problems.append(
                    f"{where}: a pattern applies to text; the column holds {kind} values."
                )
            if "allowed" in rule and kind not in (NUMBER, STRING, None):
                problems.append(f"{where}: allowed values apply to numbers and text, not {kind}.")
            if "type" in rule and schema.kind(col) == DATETIME and rule["type"] != "datetime":
                problems.append(f"{where}: a datetime column cannot be read as {rule['type']}.")
            if "type" in rule and kind is not None:
                schema.kinds[col] = kind
        return problems

    def resolve(self, frame: Frame, target: str | None) -> None:
        self.columns = list(dict.fromkeys(self.named_columns()))
        present = [c for c in self.columns if c != target or target in frame.kinds]
        missing = [c for c in present if c not in frame.kinds]
        if missing:
            from sagelab.prep._recipe_params import RecipeError

            raise RecipeError([self.missing_column(c, frame.names) for c in missing])

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        return None

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        n = frame.n_rows
        failed = np.zeros(n, dtype=bool)
        failures: dict[int, dict[str, Any]] = {}
        converted: dict[str, tuple[np.ndarray, str]] = {}
        for rule in self.values["rules"]:
            col = rule["column"]
            if col not in frame.columns:  # the label, absent at inference
                continue
            values, kind = converted.get(col, (frame.columns[col], frame.kinds[col]))
            for check in _CHECKS:
                if check not in rule:
                    continue
                if check == "type":
                    values, kind, bad = _convert(values, kind, rule["type"])
                    converted[col] = (values, kind)
                    original = frame.columns[col]
                else:
                    bad = _failing(check, rule[check], values, kind)
                    original = values
                new = bad & ~failed
                for r in np.flatnonzero(new):
                    failures[int(r)] = _failure(check, rule, col, original[r])
                failed |= bad
        for col, (values, kind) in converted.items():
            frame.set(col, values, kind)
        if failed.any():
            rows = np.flatnonzero(failed)
            ctx.reject(self, frame, rows, [failures[int(r)] for r in rows])
            frame = ctx.drop(self, frame, ~failed)
        return frame

    def reads(self, frame_names: list[str]) -> list[str]:
        return list(self.columns)


def _check_rule(where: str, rule: dict[str, Any]) -> list[str]:
    problems = []
    if "type" in rule and rule["type"] not in _TYPES:
        problems.append(
            f"{where}: 'type' must be one of {', '.join(map(repr, _TYPES))}; got {rule['type']!r}."
            f"{closest(str(rule['type']), _TYPES)}"
        )
    for bound in ("min", "max"):
        if bound in rule and not _is_number(rule[bound]):
            problems.append(f"{where}: {bound!r} must be a number; got {rule[bound]!r}.")
    if _is_number(rule.get("min")) and _is_number(rule.get("max")) and rule["min"] > rule["max"]:
        problems.append(f"{where}: 'min' ({rule['min']}) is above 'max' ({rule['max']}).")
    if "allowed" in rule and not (
        isinstance(rule["allowed"], list)
        and rule["allowed"]
        and all(isinstance(v, str | int | float) for v in rule["allowed"])
    ):
        problems.append(
            f"{where}: 'allowed' must be a non-empty list of values; got {rule['allowed']!r}."
        )
    if "not_null" in rule and not isinstance(rule["not_null"], bool):
        problems.append(f"{where}: 'not_null' must be true or false; got {rule['not_null']!r}.")
    if "pattern" in rule:
        if not isinstance(rule["pattern"], str):
            problems.append(
                f"{where}: 'pattern' must be a regular expression; got {rule['pattern']!r}."
            )
        else:
            try:
                re.compile(rule["pattern"])
            except re.error as exc:
                problems.append(
                    f"{where}: 'pattern' {rule['pattern']!r} is not a valid regular expression: {exc}."
                )
    return problems


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _by_value(values: np.ndarray, fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` of each value, computed once per distinct value."""
    cache: dict[Any, Any] = {}
    out = []
    for v in values.tolist():
        if v not in cache:
            cache[v] = fn(v)
        out.append(cache[v])
    return out


def _convert(values: np.ndarray, kind: str, to: str) -> tuple[np.ndarray, str, np.ndarray]:
    """The values read as type ``to``, the new kind, and which present values could not be."""
    n = values.shape[0]
    if to == "string":
        if kind == STRING:
            return values, STRING, np.zeros(n, dtype=bool)
        out = np.empty(n, dtype=object)
        out[:] = _by_value(values, _number_text if kind == NUMBER else _text)
        return out, STRING, np.zeros(n, dtype=bool)
    if to == "datetime":
        if kind == DATETIME:
            return values, DATETIME, np.zeros(n, dtype=bool)
        if kind != STRING:
            return (
                np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"),
                DATETIME,
                ~_absent(values, kind),
            )
        parsed = parse_datetimes(values, "", strict=False)
        return parsed, DATETIME, np.isnat(parsed) & ~_absent(values, kind)
    # number, integer, boolean
    if kind == NUMBER:
        numbers = values
    elif kind == STRING:
        parse = _boolean if to == "boolean" else _number
        numbers = np.array(_by_value(values, parse), dtype=np.float64)
    else:
        numbers = np.full(n, np.nan)
    bad = np.isnan(numbers) & ~_absent(values, kind)
    present = ~np.isnan(numbers)
    if to == "integer":
        bad |= present & (numbers != np.floor(numbers))
    elif to == "boolean":
        bad |= present & (numbers != 0) & (numbers != 1)
    numbers = np.where(bad, np.nan, numbers)
    return numbers, NUMBER, bad


def _absent(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == NUMBER:
        return np.isnan(values)
    if kind == DATETIME:
        return np.isnat(values)
    return np.fromiter((v is None for v in values), dtype=bool, count=values.shape[0])


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        number = float(str(value).strip())
    except ValueError:
        return math.nan
    # "inf" parses, but infinity is read as missing everywhere else; here it is not a number.
    return number if math.isfinite(number) else math.nan


def _boolean(value: Any) -> float:
    if value is None:
        return math.nan
    text = str(value).strip().lower()
    return 1.0 if text in _TRUE else 0.0 if text in _FALSE else math.nan


def _number_text(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _failing(check: str, expected: Any, values: np.ndarray, kind: str) -> np.ndarray:
    absent = _absent(values, kind)
    if check == "not_null":
        return absent if expected else np.zeros(values.shape[0], dtype=bool)
    if check in ("min", "max"):
        if kind != NUMBER:
            return ~absent
        with np.errstate(invalid="ignore"):
            out = values < expected if check == "min" else values > expected
        return np.asarray(out & ~absent, dtype=bool)
    if check == "allowed":
        if kind == NUMBER:
            allowed = [float(v) for v in expected if _is_number(v) or isinstance(v, bool)]
            return ~np.isin(values, allowed) & ~absent
        allowed_text = {v if isinstance(v, str) else _number_text(float(v)) for v in expected}
        return np.array(
            _by_value(values, lambda v: v is not None and v not in allowed_text), dtype=bool
        )
    # pattern
    pattern = re.compile(expected)
    return np.array(
        _by_value(values, lambda v: v is not None and pattern.fullmatch(str(v)) is None),
        dtype=bool,
    )


def _failure(check: str, rule: dict[str, Any], col: str, value: Any) -> dict[str, Any]:
    shown = _json_value(value)
    if check == "type":
        reason = f"{col} is {shown!r}, which is not {_article(rule['type'])}"
        expected: Any = rule["type"]
    elif check == "not_null":
        reason, expected = f"{col} is missing", "a value"
    elif check == "min":
        reason, expected = f"{col} is {shown!r}, below the minimum {rule['min']}", rule["min"]
    elif check == "max":
        reason, expected = f"{col} is {shown!r}, above the maximum {rule['max']}", rule["max"]
    elif check == "allowed":
        listed = ", ".join(map(repr, rule["allowed"][:10]))
        more = ", ..." if len(rule["allowed"]) > 10 else ""
        reason = f"{col} is {shown!r}, not one of {listed}{more}"
        expected = rule["allowed"]
    else:
        reason = f"{col} is {shown!r}, which does not match the pattern {rule['pattern']!r}"
        expected = rule["pattern"]
    return {"rule": check, "column": col, "value": shown, "expected": expected, "reason": reason}


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 1e16 else value
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
