"""What a profile holds: per-column statistics, the table's relations, and warnings.

Every class has ``as_dict()``, which gives plain JSON values: NaN and infinities
become ``None``, dates become ISO strings, NumPy scalars become Python numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

__all__ = [
    "COLUMN_KINDS",
    "Association",
    "ColumnProfile",
    "CorrelationMatrix",
    "Histogram",
    "Profile",
    "ProfileWarning",
    "TargetProfile",
    "TimeSeriesProfile",
    "json_value",
]

#: The inferred types a column can have.
COLUMN_KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "empty", "unsupported")


def json_value(value: Any) -> Any:
    """``value`` as plain JSON: NaN/inf → None, dates → ISO text, NumPy → Python."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v) for v in value]
    return str(value)


@dataclass
class Histogram:
    """Counts of values in equal-width bins (``len(edges) == len(counts) + 1``).

    For a datetime column the edges are seconds since 1970-01-01 (UTC).
    """

    edges: list[float]
    counts: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {"edges": json_value(self.edges), "counts": list(self.counts)}


@dataclass
class ColumnProfile:
    """The statistics of one column.

    Attributes:
        name: the column's name as the source spells it.
        kind: the inferred type, one of :data:`COLUMN_KINDS`.
        dtype: the type DuckDB read it as (``BIGINT``, ``VARCHAR``...).
        parsed_from_text: the values are text that parse as numbers or timestamps.
        count: values present (not NULL, not NaN, not infinite).
        missing: NULL or NaN values.
        distinct: distinct values present (exact up to 10,000 values, or for inputs of at
            most 250,000 rows; else a HyperLogLog estimate).
        top_values: the most frequent values with their counts.
        top_values_from_sample: ``top_values`` were counted on the sample, not on every row.
        quantiles: ``{"5%": ..., "25%": ..., "50%": ..., "75%": ..., "95%": ...}``.
        skew: the adjusted Fisher-Pearson skewness (G1, as pandas' ``skew()``).
        kurtosis: the bias-corrected excess kurtosis (G2, as pandas' ``kurt()``; 0 for a normal).
        outliers: values outside [Q1 − 1.5·IQR, Q3 + 1.5·IQR] (Tukey's fences).
        mixed_share: for text columns, the share of values that parse as numbers.
    """

    name: str
    kind: str
    dtype: str
    rows: int
    count: int
    missing: int
    distinct: int | None
    parsed_from_text: bool = False
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    top_values_from_sample: bool = False
    mean: float | None = None
    std: float | None = None
    min: Any = None
    max: Any = None
    quantiles: dict[str, float | None] = field(default_factory=dict)
    skew: float | None = None
    kurtosis: float | None = None
    zeros: int | None = None
    infinite: int | None = None
    outliers: int | None = None
    true_count: int | None = None
    length: dict[str, float | None] = field(default_factory=dict)
    empty_strings: int | None = None
    integral: bool = False
    mixed_share: float | None = None
    histogram: Histogram | None = None

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    @property
    def distinct_share(self) -> float | None:
        if self.distinct is None or not self.count:
            return None
        return min(1.0, self.distinct / self.count)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "count": self.count,
            "missing": self.missing,
            "missing_share": json_value(self.missing_share),
            "distinct": self.distinct,
            "distinct_share": json_value(self.distinct_share),
            "top_values": [{"value": json_value(v), "count": c} for v, c in self.top_values],
        }
        if self.top_values_from_sample:
            data["top_values_from_sample"] = True
        if self.parsed_from_text:
            data["parsed_from_text"] = True
        if self.mixed_share is not None:
            data["numeric_share"] = json_value(self.mixed_share)
        optional = {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "quantiles": self.quantiles or None,
            "max": self.max,
            "skew": self.skew,
            "kurtosis": self.kurtosis,
            "zeros": self.zeros,
            "infinite": self.infinite,
            "outliers": self.outliers,
            "true_count": self.true_count,
            "length": self.length or None,
            "empty_strings": self.empty_strings,
        }
        for key, value in optional.items():
            if value is not None:
                data[key] = json_value(value)
        if self.histogram is not None:
            data["histogram"] = self.histogram.as_dict()
        return data


@dataclass
class CorrelationMatrix:
    """A symmetric matrix over named columns (a correlation or association matrix)."""

    method: str
    columns: list[str]
    values: np.ndarray
    #: Rows it was computed on (the sample's size for Spearman), for the report.
    rows: int = 0

    def get(self, a: str, b: str) -> float | None:
        i, j = self.columns.index(a), self.columns.index(b)
        value = float(self.values[i, j])
        return value if math.isfinite(value) else None

    def pairs(self) -> list[tuple[str, str, float]]:
        """Each unordered pair once with its finite value, strongest first."""
        out = []
        for i in range(len(self.columns)):
            for j in range(i + 1, len(self.columns)):
                value = float(self.values[i, j])
                if math.isfinite(value):
                    out.append((self.columns[i], self.columns[j], value))
        return sorted(out, key=lambda p: -abs(p[2]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rows": self.rows,
            "columns": list(self.columns),
            "matrix": json_value(self.values.tolist()),
        }


@dataclass
class Association:
    """How one column relates to the target, with a test of "no relation".

    Attributes:
        column: the feature.
        test: ``pearson`` (t-test of r), ``welch-t``, ``anova`` or ``chi-square``.
        statistic: the test's statistic (t, F or χ²).
        p_value: the chance of a relation at least this strong if there were none.
        effect: its strength on a 0–1 scale: |r|, the correlation ratio η, or Cramér's V.
        effect_name: ``|r|``, ``eta`` or ``cramers_v``.
        n: the rows that have both values.
        auc: for a binary target and a numeric column, the ROC AUC of the column alone
            (on the sample).
    """

    column: str
    test: str
    statistic: float | None
    p_value: float | None
    effect: float | None
    effect_name: str
    n: int
    dof: tuple[float, ...] = ()
    auc: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = {
            "column": self.column,
            "test": self.test,
            "statistic": json_value(self.statistic),
            "p_value": json_value(self.p_value),
            "effect": json_value(self.effect),
            "effect_name": self.effect_name,
            "n": self.n,
            "dof": json_value(list(self.dof)),
        }
        if self.auc is not None:
            data["auc"] = json_value(self.auc)
        if self.note:
            data["note"] = self.note
        return data


@dataclass
class TargetProfile:
    """The target column: its classes (for a categorical target) and each column's association."""

    name: str
    kind: str
    classes: list[tuple[Any, int]] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def imbalance_ratio(self) -> float | None:
        """The largest class's count over the smallest's."""
        counts = [c for _, c in self.classes if c > 0]
        if len(counts) < 2:
            return None
        return max(counts) / min(counts)

    def as_dict(self) -> dict[str, Any]:
        total = sum(c for _, c in self.classes) or 1
        return {
            "name": self.name,
            "kind": self.kind,
            "classes": [
                {"value": json_value(v), "count": c, "share": c / total} for v, c in self.classes
            ],
            "imbalance_ratio": json_value(self.imbalance_ratio),
            "associations": [a.as_dict() for a in self.associations],
            "skipped": dict(self.skipped),
        }


@dataclass
class TimeSeriesProfile:
    """Rows and means per equal time bucket of a datetime column."""

    column: str
    starts: list[dt.datetime]
    bucket_seconds: float
    counts: list[int]
    means: dict[str, list[float | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "bucket_seconds": self.bucket_seconds,
            "starts": json_value(self.starts),
            "counts": list(self.counts),
            "means": json_value(self.means),
        }


@dataclass(frozen=True)
class ProfileWarning:
    """Something a practitioner should look at before modelling.

    Attributes:
        kind: ``high_correlation``, ``constant``, ``empty``, ``high_cardinality``, ``unique``,
            ``missing``, ``imbalance``, ``target_leakage``, ``duplicates``, ``mixed_types``,
            ``infinite``, ``no_rows`` or ``few_rows``.
        columns: the columns concerned (a pair for a correlation).
        message: one sentence that names the columns and the numbers.
    """

    kind: str
    columns: tuple[str, ...]
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": list(self.columns), "message": self.message}


@dataclass
class Profile:
    """A table's profile: what :func:`~sagelab.prep.profile` returns.

    Attributes:
        source: the SOURCE profiled (a table name, a query or a path).
        rows: the number of rows.
        columns: each column's statistics, in the source's order.
        duplicate_rows: rows that repeat an earlier row exactly.
        correlations: ``pearson`` (every row), ``spearman`` (on the sample) and
            ``cramers_v`` (every row, categorical columns); absent when fewer than two
            columns qualify.
        target: the target's classes and associations, when a target was named.
        warnings: what to look at, most important kinds first.
        approximate: the input has more rows than the exact limit (250,000): distinct counts
            above 10,000 are HyperLogLog estimates and quantiles come from the sample.
        sample_rows: the rows in the sample that Spearman's ρ, the scatter matrix and
            high-cardinality top values come from.
        seconds: how long the profile took.
    """

    source: str
    rows: int
    columns: list[ColumnProfile]
    duplicate_rows: int
    correlations: dict[str, CorrelationMatrix] = field(default_factory=dict)
    target: TargetProfile | None = None
    warnings: list[ProfileWarning] = field(default_factory=list)
    time_series: TimeSeriesProfile | None = None
    approximate: bool = False
    sample_rows: int = 0
    seconds: float = 0.0
    #: The sample's numeric and boolean columns as float arrays (NaN when missing), for plots.
    sample: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    #: The target's values on the same sample rows, for colouring plots.
    sample_target: np.ndarray | None = field(default=None, repr=False, compare=False)

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column ``name``.

        Raises:
            KeyError: no such column.
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def missing_cells(self) -> int:
        return sum(c.missing for c in self.columns)

    def as_dict(self) -> dict[str, Any]:
        """The profile as plain JSON values (the sample is left out)."""
        return {
            "source": self.source,
            "rows": self.rows,
            "columns": len(self.columns),
            "duplicate_rows": self.duplicate_rows,
            "missing_cells": self.missing_cells,
            "approximate": self.approximate,
            "sample_rows": self.sample_rows,
            "seconds": round(self.seconds, 4),
            "variables": [c.as_dict() for c in self.columns],
            "correlations": {k: m.as_dict() for k, m in self.correlations.items()},
            "target": self.target.as_dict() if self.target else None,
            "time_series": self.time_series.as_dict() if self.time_series else None,
            "warnings": [w.as_dict() for w in self.warnings],
        }
