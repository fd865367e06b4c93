"""The warnings a practitioner wants before modelling, from a finished profile."""

from __future__ import annotations

from typing import Any

from sagelab.prep._profile_model import Profile, ProfileWarning

__all__ = [
    "CORRELATION_THRESHOLD",
    "IMBALANCE_RATIO",
    "LEAKAGE_THRESHOLD",
    "MISSING_THRESHOLD",
    "find_warnings",
]

#: |r|, ρ or Cramér's V above this between two columns: one may be redundant.
CORRELATION_THRESHOLD = 0.9
#: An effect size (|r|, η, Cramér's V) at or above this with the target is suspicious,
#: as is a single column's AUC beyond ``1 - (1 - this) / 5`` (0.99) either way.
LEAKAGE_THRESHOLD = 0.95
#: A column missing at least this share of its values.
MISSING_THRESHOLD = 0.5
#: The largest class at least this many times the smallest.
IMBALANCE_RATIO = 5.0
#: A categorical column with more distinct values than this.
HIGH_CARDINALITY = 50

# The order the report lists them in: what breaks a model first.
_ORDER = (
    "no_rows",
    "few_rows",
    "target_leakage",
    "imbalance",
    "empty",
    "constant",
    "duplicates",
    "high_correlation",
    "missing",
    "mixed_types",
    "unique",
    "high_cardinality",
    "infinite",
)


def _q(name: str) -> str:
    return repr(name)


def _fmt(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def find_warnings(p: Profile) -> list[ProfileWarning]:
    """Every warning the profile calls for, most important kinds first."""
    out: list[ProfileWarning] = []
    target = p.target.name if p.target else None
    if p.rows == 0:
        out.append(
            ProfileWarning(
                "no_rows", (), "The data has no rows: only the columns' names and types are known."
            )
        )
    elif p.rows < 3:
        out.append(
            ProfileWarning(
                "few_rows",
                (),
                f"The data has only {p.rows} row(s): spread, correlations and tests need at least 3.",
            )
        )
    for c in p.columns if p.rows else []:
        name = _q(c.name)
        if c.kind == "empty":
            out.append(
                ProfileWarning(
                    "empty", (c.name,), f"Column {name} has no values: all {p.rows} are missing."
                )
            )
            continue
        if c.distinct == 1 and p.rows > 1:
            only = _fmt(c.top_values[0][0]) if c.top_values else "one value"
            out.append(
                ProfileWarning(
                    "constant",
                    (c.name,),
                    f"Column {name} is constant: every present value is {only}; it carries no information.",
                )
            )
        if c.missing_share >= MISSING_THRESHOLD:
            out.append(
                ProfileWarning(
                    "missing",
                    (c.name,),
                    f"Column {name} is {c.missing_share:.1%} missing ({c.missing:,} of {p.rows:,} rows).",
                )
            )
        if c.mixed_share is not None:
            out.append(
                ProfileWarning(
                    "mixed_types",
                    (c.name,),
                    f"Column {name} mixes numbers ({c.mixed_share:.1%} of its values) with text; "
                    "it is profiled as text. Clean the non-numbers or cast it.",
                )
            )
        share = c.distinct_share or 0.0
        if c.kind in ("categorical", "text") and c.count > HIGH_CARDINALITY and share >= 0.95:
            out.append(
                ProfileWarning(
                    "unique",
                    (c.name,),
                    f"Column {name} has a different value in (nearly) every row: an identifier? "
                    "Leave it out of the features.",
                )
            )
        elif c.kind == "categorical" and (c.distinct or 0) > HIGH_CARDINALITY:
            out.append(
                ProfileWarning(
                    "high_cardinality",
                    (c.name,),
                    f"Column {name} has {c.distinct:,} distinct values (high cardinality); group "
                    "rare values, or use a target or hashing encoding.",
                )
            )
        if c.infinite:
            out.append(
                ProfileWarning(
                    "infinite",
                    (c.name,),
                    f"Column {name} holds {c.infinite:,} infinite values; its statistics leave them out.",
                )
            )
    if p.duplicate_rows:
        out.append(
            ProfileWarning(
                "duplicates",
                (),
                f"{p.duplicate_rows:,} rows ({p.duplicate_rows / p.rows:.1%}) repeat an earlier row exactly.",
            )
        )
    out += _correlation_warnings(p, target)
    out += _target_warnings(p)
    rank = {kind: n for n, kind in enumerate(_ORDER)}
    return sorted(out, key=lambda w: rank.get(w.kind, len(rank)))


def _correlation_warnings(p: Profile, target: str | None) -> list[ProfileWarning]:
    out = []
    seen: set[frozenset[str]] = set()
    labels = {"pearson": "Pearson's r", "spearman": "Spearman's ρ", "cramers_v": "Cramér's V"}
    for method in ("pearson", "spearman", "cramers_v"):
        matrix = p.correlations.get(method)
        if matrix is None:
            continue
        for a, b, value in matrix.pairs():
            if abs(value) <= CORRELATION_THRESHOLD:
                break
            pair = frozenset((a, b))
            if target in pair or pair in seen:
                continue
            seen.add(pair)
            out.append(
                ProfileWarning(
                    "high_correlation",
                    (a, b),
                    f"Columns {_q(a)} and {_q(b)} are highly correlated ({labels[method]} = "
                    f"{value:.3f}); one of them may be redundant.",
                )
            )
    return out


def _target_warnings(p: Profile) -> list[ProfileWarning]:
    t = p.target
    if t is None:
        return []
    out = []
    ratio = t.imbalance_ratio
    if ratio is not None and ratio >= IMBALANCE_RATIO:
        total = sum(n for _, n in t.classes)
        small = min((c for c in t.classes if c[1] > 0), key=lambda vn: vn[1])
        large = max(t.classes, key=lambda vn: vn[1])
        out.append(
            ProfileWarning(
                "imbalance",
                (t.name,),
                f"The target {_q(t.name)} is imbalanced: class {_fmt(small[0])} has {small[1]:,} rows "
                f"({small[1] / total:.1%}) against {large[1]:,} for {_fmt(large[0])}; use stratified "
                "splits and class weights or resampling, and judge models by AUC-PR or F1.",
            )
        )
    auc_limit = 1.0 - (1.0 - LEAKAGE_THRESHOLD) / 5.0
    for a in t.associations:
        strong = a.effect is not None and a.effect >= LEAKAGE_THRESHOLD
        separating = a.auc is not None and max(a.auc, 1.0 - a.auc) >= auc_limit
        if strong or separating:
            how = (
                f"{a.effect_name} = {a.effect:.3f}"
                if strong and a.effect is not None
                else f"AUC = {a.auc:.3f} on its own"
            )
            out.append(
                ProfileWarning(
                    "target_leakage",
                    (a.column, t.name),
                    f"Column {_q(a.column)} predicts the target {_q(t.name)} suspiciously well "
                    f"({how}); check it is not derived from the target or known only after it.",
                )
            )
    return out
