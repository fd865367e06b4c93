"""Categorical encoding, datetime parts and text features (scikit-learn's encoders and vectorizers)."""

from __future__ import annotations

import re
import warnings
from typing import Any, ClassVar

import numpy as np

from sagelab.errors import InvalidInput
from sagelab.prep._recipe_frame import (
    DATETIME,
    NUMBER,
    STRING,
    Frame,
    Schema,
    parse_datetimes,
    unique_name,
)
from sagelab.prep._recipe_params import Param
from sagelab.prep._recipe_step import ApplyContext, FitContext, Step, finite, require

__all__ = ["DatetimeParts", "Encode", "Text"]

_UNSAFE = re.compile(r"[^0-9A-Za-z_]+")


def name_part(value: Any) -> str:
    """A category or term as part of a column name: letters, digits and ``_`` only."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _UNSAFE.sub("_", str(value)).strip("_") or "_"


def _encoder_input(frame: Frame, col: str) -> np.ndarray:
    """One column for a scikit-learn encoder: text with NaN for missing, or finite numbers."""
    if frame.kinds[col] == NUMBER:
        return finite(frame.columns[col]).reshape(-1, 1)
    values = frame.columns[col].copy()
    values[[v is None for v in values]] = np.nan
    return values.reshape(-1, 1)


class Encode(Step):
    """Encode categories as numbers: one-hot columns with an unknown bucket, or ordinal codes.

    ``onehot`` (``OneHotEncoder``) replaces a column ``c`` by ``c_<category>``
    columns, plus ``c__missing`` when missing values were seen in training,
    ``c__infrequent`` for categories rarer than ``min_frequency``, and
    ``c__unknown``, which is 1 for a category never seen in training. ``ordinal``
    (``OrdinalEncoder``) replaces each category by its code 0, 1, ... in sorted
    order, an unseen one by -1, and keeps missing values missing; ``label`` is
    the same for the label column (skipped when the label is absent).
    """

    name = "encode"
    params = (
        Param("columns", "columns", required=True, help="Text or number columns of categories."),
        Param("method", "str", "onehot", choices=("onehot", "ordinal", "label")),
        Param(
            "min_frequency",
            "int_or_fraction",
            only_for=("method", ("onehot",)),
            help="Rarer categories share one 'infrequent' column.",
        ),
        Param("max_categories", "int", low=2, only_for=("method", ("onehot",))),
    )
    column_kinds = (STRING, NUMBER)
    default_kind = None
    touches_target = True

    def check_columns(self, names: list[str], schema: Schema, target: str | None) -> list[str]:
        problems = super().check_columns(names, schema, target)
        if self.values["method"] != "label" and target in names:
            problems.append(
                f"{self.label} one-hot or ordinal encodes the label {target!r}; use method "
                "label for the label column."
            )
        return problems

    def plan_outputs(self, schema: Schema, target: str | None) -> None:
        if self.values["method"] == "onehot":
            for col in self.columns:
                schema.kinds.pop(col, None)
                schema.open_prefixes.append(f"{col}_")
        else:
            for col in self.columns:
                schema.kinds[col] = NUMBER

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        preprocessing = require("sklearn.preprocessing", "scikit-learn")
        method = self.values["method"]
        taken = [c for c in frame.names if c not in self.columns or method != "onehot"]
        outputs: dict[str, list[str]] = {}
        categories: dict[str, list[Any]] = {}
        for col in self.columns:
            X = _encoder_input(frame, col)
            if method == "onehot":
                enc: Any = preprocessing.OneHotEncoder(
                    handle_unknown="ignore",
                    sparse_output=False,
                    min_frequency=self.values["min_frequency"],
                    max_categories=self.values["max_categories"],
                    dtype=np.float64,
                )
            else:
                enc = preprocessing.OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64
                )
            enc.fit(X)
            self.estimators[col] = enc
            cats = list(enc.categories_[0])
            categories[col] = [_json_category(c) for c in cats]
            if method == "onehot":
                outputs[col] = self._names(col, enc, cats, taken)
                taken.extend(outputs[col])
        self.state["categories"] = categories
        if method == "onehot":
            self.state["outputs"] = outputs

    @staticmethod
    def _names(col: str, enc: Any, cats: list[Any], taken: list[str]) -> list[str]:
        infrequent = enc.infrequent_categories_[0] if enc._infrequent_enabled else None
        rare = {_key(c) for c in (infrequent if infrequent is not None else [])}
        names: list[str] = []
        for c in cats:
            if _key(c) in rare:
                continue
            missing = c is None or (isinstance(c, float) and np.isnan(c))
            wanted = f"{col}__missing" if missing else f"{col}_{name_part(c)}"
            names.append(unique_name(wanted, taken + names))
        if rare:
            names.append(unique_name(f"{col}__infrequent", taken + names))
        if len(names) != len(enc.get_feature_names_out()):
            raise InvalidInput(f"The one-hot columns of {col!r} could not be named; report this.")
        names.append(unique_name(f"{col}__unknown", taken + names))
        return names

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        method = self.values["method"]
        for col in self.columns:
            if col not in frame.columns:  # the label, absent at inference
                continue
            enc = self.estimators[col]
            X = _encoder_input(frame, col)
            if method != "onehot":
                codes = np.array(enc.transform(X)[:, 0], dtype=np.float64)
                # Missing stays missing, seen in training or not (unseen would read as -1).
                codes[frame.missing(col)] = np.nan
                frame.set(col, codes, NUMBER)
                continue
            hot = (
                enc.transform(X)
                if frame.n_rows
                else np.zeros((0, len(enc.get_feature_names_out())))
            )
            names = self.state["outputs"][col]
            frame.drop([col])
            for k, name in enumerate(names[:-1]):
                frame.set(name, np.ascontiguousarray(hot[:, k]), NUMBER)
            frame.set(names[-1], (hot.sum(axis=1) == 0).astype(np.float64), NUMBER)
        return frame


def _key(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ("missing",)
    return value


def _json_category(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


_PARTS = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "dayofweek",
    "dayofyear",
    "quarter",
    "week",
    "is_weekend",
)


class DatetimeParts(Step):
    """Split dates and timestamps into number columns ``<column>_<part>``.

    Parts: year, month, day, hour, minute, second, dayofweek (Monday 0),
    dayofyear, quarter, week (ISO) and is_weekend. Text columns are read as ISO
    8601 (an unreadable value counts as missing). Times are in UTC unless a
    ``timezone`` (an IANA name, ``America/New_York``) is given.
    """

    name = "datetime"
    params = (
        Param(
            "columns", "columns", required=True, help="Date, timestamp or ISO 8601 text columns."
        ),
        Param("parts", "scalars", ["year", "month", "day", "dayofweek", "hour"]),
        Param("timezone", "str", help="Read the parts in this IANA time zone (default UTC)."),
        Param("keep", "bool", False, help="Keep the original columns too."),
    )
    column_kinds = (DATETIME, STRING)
    default_kind = None

    def check_values(self) -> list[str]:
        problems = []
        for part in self.values["parts"]:
            if part not in _PARTS:
                from sagelab.errors import closest

                problems.append(
                    f"{self.label}: unknown part {part!r}.{closest(str(part), _PARTS)} "
                    f"The parts are {', '.join(_PARTS)}."
                )
        zone = self.values["timezone"]
        if zone is not None:
            try:
                from zoneinfo import ZoneInfo

                ZoneInfo(zone)
            except (ValueError, KeyError, OSError):
                problems.append(
                    f"{self.label}: 'timezone' {zone!r} is not a known IANA time zone "
                    "(like 'UTC' or 'America/New_York')."
                )
        return problems

    def _outputs(self, taken: list[str]) -> dict[str, list[str]]:
        outputs: dict[str, list[str]] = {}
        names = list(taken)
        for col in self.columns:
            outputs[col] = []
            for part in self.values["parts"]:
                outputs[col].append(unique_name(f"{col}_{part}", names))
                names.append(outputs[col][-1])
        return outputs

    def plan_outputs(self, schema: Schema, target: str | None) -> None:
        if not self.values["keep"]:
            for col in self.columns:
                schema.kinds.pop(col, None)
        for names in self._outputs(list(schema.kinds)).values():
            for name in names:
                schema.kinds[name] = NUMBER

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        keep = self.values["keep"]
        self.state["outputs"] = self._outputs(
            [c for c in frame.names if keep or c not in self.columns]
        )

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        import pandas as pd

        parts: dict[str, np.ndarray] = {}
        for col in self.columns:
            values = frame.columns[col]
            if frame.kinds[col] == STRING:
                values = parse_datetimes(values, col, strict=False)
            stamps = pd.DatetimeIndex(values).tz_localize("UTC")
            if self.values["timezone"]:
                stamps = stamps.tz_convert(self.values["timezone"])
            for part, name in zip(self.values["parts"], self.state["outputs"][col], strict=True):
                parts[name] = _part(stamps, part)
        if not self.values["keep"]:
            frame.drop(self.columns)
        for name, values in parts.items():
            frame.set(name, values, NUMBER)
        return frame


def _part(stamps: Any, part: str) -> np.ndarray:
    nat = np.asarray(stamps.isna())
    if part == "week":
        values = stamps.isocalendar().week.to_numpy(dtype=np.float64, na_value=np.nan)
    elif part == "is_weekend":
        values = (np.asarray(stamps.day_of_week) >= 5).astype(np.float64)
    else:
        attr = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(part, part)
        values = np.asarray(getattr(stamps, attr), dtype=np.float64)
    values = np.array(values, dtype=np.float64)
    values[nat] = np.nan
    return values


class Text(Step):
    """Text features by scikit-learn's vectorizers: ``tfidf`` (``TfidfVectorizer``), ``counts``
    (``CountVectorizer``), or ``tokens``, one cleaned text column.

    Lower-casing, tokenisation (``token_pattern``), stop-word removal
    (``english`` or a list) and n-grams (``ngram_range``) apply to all three.
    The vocabulary (at most ``max_features`` terms, the most frequent) is learnt
    at fit; terms never seen are ignored. A vectorized column ``c`` becomes
    ``c_<term>`` columns; ``tokens`` makes ``c_tokens``, the kept tokens joined
    by spaces. A missing text counts as empty.
    """

    name = "text"
    params = (
        Param("column", "column", required=True, help="The text column."),
        Param("method", "str", "tfidf", choices=("tfidf", "counts", "tokens")),
        Param("lowercase", "bool", True),
        Param("stop_words", "str_or_strings", help="'english' or a list of words to remove."),
        Param("ngram_range", "int_pair", [1, 1], help="[1, 2] adds pairs of words."),
        Param(
            "max_features",
            "int",
            100,
            low=1,
            high=100_000,
            only_for=("method", ("tfidf", "counts")),
        ),
        Param("min_df", "int_or_fraction", 1, only_for=("method", ("tfidf", "counts"))),
        Param("token_pattern", "str", r"(?u)\b\w\w+\b"),
        Param("keep", "bool", False, help="Keep the original text column too."),
    )
    column_kinds = (STRING,)
    default_kind = None
    _VECTORIZERS: ClassVar[dict[str, str]] = {
        "tfidf": "TfidfVectorizer",
        "counts": "CountVectorizer",
        "tokens": "CountVectorizer",
    }

    def check_values(self) -> list[str]:
        problems = []
        stop = self.values["stop_words"]
        if isinstance(stop, str) and stop != "english":
            problems.append(
                f"{self.label}: 'stop_words' must be 'english' or a list of words; got {stop!r}."
            )
        try:
            re.compile(self.values["token_pattern"])
        except re.error as exc:
            problems.append(
                f"{self.label}: 'token_pattern' is not a valid regular expression: {exc}."
            )
        return problems

    def named_columns(self) -> list[str]:
        return [self.values["column"]]

    def plan_outputs(self, schema: Schema, target: str | None) -> None:
        col = self.values["column"]
        if not self.values["keep"]:
            schema.kinds.pop(col, None)
        if self.values["method"] == "tokens":
            schema.kinds[unique_name(f"{col}_tokens", list(schema.kinds))] = STRING
        else:
            schema.open_prefixes.append(f"{col}_")

    def resolve(self, frame: Frame, target: str | None) -> None:
        self.columns = [self.values["column"]]
        super().resolve(frame, target)

    def _vectorizer(self) -> Any:
        text = require("sklearn.feature_extraction.text", "scikit-learn")
        options: dict[str, Any] = {
            "lowercase": self.values["lowercase"],
            "stop_words": self.values["stop_words"],
            "ngram_range": tuple(self.values["ngram_range"]),
            "token_pattern": self.values["token_pattern"],
        }
        if self.values["method"] != "tokens":
            options.update(
                max_features=self.values["max_features"],
                min_df=self.values["min_df"],
                dtype=np.float64,
            )
        return getattr(text, self._VECTORIZERS[self.values["method"]])(**options)

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        col = self.columns[0]
        taken = [c for c in frame.names if self.values["keep"] or c != col]
        if self.values["method"] == "tokens":
            self.state["outputs"] = [unique_name(f"{col}_tokens", taken)]
            return
        vec = self._vectorizer()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # stop words inconsistent with the tokenizer
                vec.fit(_documents(frame.columns[col]))
        except ValueError as exc:
            raise InvalidInput(f"{self.label} found no terms to learn in {col!r}: {exc}") from None
        names: list[str] = []
        for term in vec.get_feature_names_out():
            names.append(unique_name(f"{col}_{name_part(term)}", taken + names))
        self.estimators["vectorizer"] = vec
        self.state["outputs"] = names

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        col = self.columns[0]
        values = frame.columns[col]
        names: list[str] = self.state["outputs"]
        if self.values["method"] == "tokens":
            analyze = self._vectorizer().build_analyzer()
            out = np.empty(values.shape[0], dtype=object)
            out[:] = [None if v is None else " ".join(analyze(v)) for v in values]
            new = {names[0]: (out, STRING)}
        else:
            matrix = self.estimators["vectorizer"].transform(_documents(values)).toarray()
            new = {
                n: (np.ascontiguousarray(matrix[:, k], dtype=np.float64), NUMBER)
                for k, n in enumerate(names)
            }
        if not self.values["keep"]:
            frame.drop([col])
        for name, (column, kind) in new.items():
            frame.set(name, column, kind)
        return frame


def _documents(values: np.ndarray) -> list[str]:
    return ["" if v is None else str(v) for v in values]
