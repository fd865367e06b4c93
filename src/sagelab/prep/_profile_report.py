"""The profile's HTML report, and its copy in the lake."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import InvalidInput
from sagelab.prep._plots import Plot
from sagelab.prep._profile_model import ColumnProfile, Profile
from sagelab.prep._profile_plots import profile_plots
from sagelab.prep._report import (
    fmt,
    page,
    plot_figure,
    report_target,
    section,
    store_files,
    table,
    write_page,
)

if TYPE_CHECKING:
    from sagelab.lake import Lake

__all__ = ["PROFILES_PREFIX", "profile_name", "store_profile", "write_profile_report"]

#: Where profiles go in the artifacts bucket: ``profiles/<name>/``.
PROFILES_PREFIX = "profiles"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SEVERE = {"target_leakage", "no_rows", "empty", "constant", "imbalance"}
_PAIRS_SHOWN = 15


def write_profile_report(profile: Profile, path: str | os.PathLike[str]) -> Path:
    """Write the profile as one self-contained HTML page, with its figures as PNGs beside it.

    The page has an overview, the warnings, a table and details per column, the
    distributions (histograms), box plots, the correlation heat maps and strongest
    pairs, a scatter matrix of the most related columns, a time-series plot when a
    datetime column exists, and the target's distribution and associations. The
    figures are embedded as base64 PNGs and also written to ``<name>_files/``.

    Args:
        profile: what :func:`profile` returned.
        path: the ``.html`` file to write; missing parent folders are created.

    Returns:
        The path of the HTML file.

    Raises:
        InvalidInput: ``profile`` is not a Profile, or ``path`` is a folder or not ``.html``.
        ImportError: matplotlib is not installed.
    """
    if not isinstance(profile, Profile):
        raise InvalidInput(
            f"write_profile_report needs the Profile that profile() returned; got {type(profile).__name__}."
        )
    target = report_target(path)
    plots = profile_plots(profile)
    by_name = {p.name: p for p in plots}
    return write_page(target, plots, lambda files: _page(profile, by_name, files))


def store_profile(
    profile: Profile, lake: Lake, name: str, *, report: str | os.PathLike[str] | None = None
) -> str:
    """Copy the profile (as ``profile.json``) and its report into the lake's artifacts bucket.

    Everything goes under ``s3://artifacts/profiles/<name>/``: ``profile.json``, and with
    ``report`` the HTML page as ``report.html`` and its PNGs in ``report_files/``.

    Args:
        profile: the profile.
        lake: the lake.
        name: the profile's name (letters, digits, ``.``, ``_``, ``-``; at most 100).
        report: a report written by :func:`write_profile_report`, to copy as well.

    Returns:
        The URI of the folder, ``s3://artifacts/profiles/<name>/``.

    Raises:
        InvalidInput: a bad name, or ``report`` does not exist.
    """
    from sagelab.lake import ARTIFACTS_BUCKET

    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"A profile name is 1 to 100 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; got {name!r}."
        )
    files: dict[str, bytes] = {
        "profile.json": json.dumps(profile.as_dict(), indent=2, ensure_ascii=False).encode("utf-8")
    }
    if report is not None:
        html = Path(report)
        if not html.is_file():
            raise InvalidInput(f"The report {str(html)!r} does not exist; write it first.")
        files["report.html"] = html.read_bytes()
        pngs = html.parent / f"{html.stem}_files"
        for png in sorted(pngs.glob("*.png")) if pngs.is_dir() else []:
            files[f"report_files/{png.name}"] = png.read_bytes()
    prefix = f"{PROFILES_PREFIX}/{name}"
    store_files(lake, ARTIFACTS_BUCKET, prefix, files)
    return lake.uri(ARTIFACTS_BUCKET, prefix + "/")


def profile_name(source: str) -> str:
    """A profile name derived from a SOURCE: the table name, the file's stem, or ``query``."""
    text = source.strip()
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$", text):
        return text
    if re.match(r"^\s*(select|with|values|from|\()", text, re.IGNORECASE):
        return "query"
    stem = Path(text.rstrip("/")).name.split(".")[0]
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "data"
    return clean[:100]


# ---------------------------------------------------------------------------- page
def _page(p: Profile, plots: dict[str, Plot], files_dir: str) -> str:
    kinds = Counter(c.kind for c in p.columns)
    facts: list[tuple[str, Any]] = [
        ("source", p.source),
        ("rows", p.rows),
        ("columns", f"{len(p.columns)} ({', '.join(f'{n} {k}' for k, n in kinds.most_common())})"),
        (
            "duplicate rows",
            f"{fmt(p.duplicate_rows)} ({p.duplicate_rows / p.rows:.1%})" if p.rows else "0",
        ),
        (
            "missing cells",
            f"{fmt(p.missing_cells)} ({p.missing_cells / max(1, p.rows * len(p.columns)):.1%})",
        ),
        ("target", p.target.name if p.target else "none"),
        ("sample", f"{p.sample_rows:,} rows (Spearman's ρ, scatter matrix)"),
        (
            "exactness",
            f"distinct counts above 10,000 are HyperLogLog estimates; quantiles come from the "
            f"{p.sample_rows:,}-row sample"
            if p.approximate
            else "every statistic is exact except Spearman's ρ (on the sample)",
        ),
        ("took", f"{p.seconds:.2f} s"),
    ]
    sections = [
        _warnings_section(p),
        _columns_section(p),
        section("distributions", "Distributions", plot_figure(plots["histograms"])),
        section("box-plots", "Box plots", plot_figure(plots["box-plots"])),
        _correlations_section(p, plots),
        section("scatter-matrix", "Scatter matrix", plot_figure(plots["scatter-matrix"])),
        section("time-series", "Time series", plot_figure(plots["time-series"])),
        _target_section(p, plots),
    ]
    return page(f"Profile of {_short_source(p.source)}", facts, sections, files_dir)


def _short_source(source: str) -> str:
    one_line = " ".join(source.split())
    return one_line if len(one_line) <= 80 else one_line[:77] + "..."


def _warnings_section(p: Profile) -> str:
    if not p.warnings:
        return section("warnings", "Warnings", "<p>No warnings: nothing stands out.</p>")
    items = "".join(
        f'<li class="{"severe" if w.kind in _SEVERE else "warn"}"><span class="kind">'
        f"{escape(w.kind)}</span>{escape(w.message)}</li>"
        for w in p.warnings
    )
    return section(
        "warnings", f"Warnings ({len(p.warnings)})", f'<ul class="warnings">{items}</ul>'
    )


def _spark(c: ColumnProfile) -> str:
    """A tiny inline SVG histogram (or top-value bars) for the overview table."""
    if c.histogram is not None and c.histogram.counts:
        counts = c.histogram.counts
    elif c.top_values:
        counts = [n for _, n in c.top_values[:10]]
    else:
        return ""
    top = max(counts) or 1
    width, height = 90, 22
    w = width / len(counts)
    bars = "".join(
        f'<rect x="{i * w:.1f}" y="{height - n / top * height:.1f}" width="{max(w - 0.6, 0.6):.1f}" '
        f'height="{n / top * height:.1f}"/>'
        for i, n in enumerate(counts)
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'fill="#4a7fb5" role="img" aria-label="distribution">{bars}</svg>'
    )


def _columns_section(p: Profile) -> str:
    header = (
        "column",
        "type",
        "distribution",
        "missing",
        "distinct",
        "mean",
        "std",
        "min",
        "median",
        "max",
    )
    rows = []
    for c in p.columns:
        median = c.quantiles.get("50%") if c.quantiles else None
        rows.append(
            (
                c.name,
                c.kind,
                _spark(c),
                f"{c.missing_share:.1%}",
                c.distinct,
                c.mean,
                c.std,
                c.min,
                median,
                c.max,
            )
        )
    overview = table(header, rows, numeric_from=3, raw=(2,))
    details = "\n".join(_column_details(n, c) for n, c in enumerate(p.columns))
    return section(
        "columns",
        "Columns",
        overview + "\n<h3>Each column</h3>\n" + details,
    )


def _column_details(n: int, c: ColumnProfile) -> str:
    stats: list[tuple[str, Any]] = [
        ("inferred type", c.kind),
        ("read as", c.dtype + (" (parsed from text)" if c.parsed_from_text else "")),
        ("values", c.count),
        ("missing", f"{fmt(c.missing)} ({c.missing_share:.1%})"),
        ("distinct", c.distinct),
    ]
    if c.mixed_share is not None:
        stats.append(("share that are numbers", f"{c.mixed_share:.1%}"))
    for key, label in (("mean", "mean"), ("std", "standard deviation")):
        value = getattr(c, key)
        if value is not None:
            stats.append((label, value))
    if c.min is not None:
        stats.append(("min", c.min))
    for q, v in c.quantiles.items():
        stats.append((f"{q} quantile", v))
    if c.max is not None:
        stats.append(("max", c.max))
    extra = (
        ("skew", "skewness (G1)"),
        ("kurtosis", "excess kurtosis (G2)"),
        ("zeros", "zeros"),
        ("outliers", "outliers (Tukey's fences)"),
        ("infinite", "infinite values"),
        ("true_count", "true"),
        ("empty_strings", "empty strings"),
    )
    for key, label in extra:
        value = getattr(c, key)
        if value is not None:
            stats.append((label, value))
    if c.length:
        stats.append(
            (
                "length (min / mean / max)",
                " / ".join(fmt(c.length.get(k)) for k in ("min", "mean", "max")),
            )
        )
    left = table(("statistic", "value"), stats, css="facts")
    right = ""
    if c.top_values:
        note = " (on the sample)" if c.top_values_from_sample else ""
        shown = [(fmt(v) if not isinstance(v, str) else v, k) for v, k in c.top_values]
        right = f"<div>{table((f'top values{note}', 'count'), shown)}</div>"
    return (
        f'<details id="column-{n}"><summary>{escape(c.name)} <span class="kind">{escape(c.kind)}'
        f'</span></summary>\n<div class="cols"><div>{left}</div>{right}</div>\n</details>'
    )


def _correlations_section(p: Profile, plots: dict[str, Plot]) -> str:
    body = []
    labels = {"pearson": "Pearson's r", "spearman": "Spearman's ρ", "cramers_v": "Cramér's V"}
    for method, plot_name in (
        ("pearson", "correlation-pearson"),
        ("spearman", "correlation-spearman"),
        ("cramers_v", "cramers-v"),
    ):
        body.append(plot_figure(plots[plot_name]))
        matrix = p.correlations.get(method)
        if matrix is not None:
            pairs = matrix.pairs()[:_PAIRS_SHOWN]
            if pairs:
                body.append(
                    "<details><summary>The strongest pairs by "
                    f"{escape(labels[method])}</summary>"
                    + table(("column", "column", labels[method]), pairs, numeric_from=2)
                    + "</details>"
                )
    return section("correlations", "Correlations", "\n".join(body))


def _target_section(p: Profile, plots: dict[str, Plot]) -> str:
    t = p.target
    if t is None:
        return section(
            "target",
            "Target",
            '<p class="missing">No target was named; profile with a target to see its '
            "distribution, class balance and each column's association with it.</p>",
        )
    body = [plot_figure(plots["target-distribution"])]
    if t.classes:
        total = sum(n for _, n in t.classes) or 1
        ratio = t.imbalance_ratio
        body.append(
            "<h3>Class balance</h3>"
            + table(("class", "rows", "share"), [(v, n, f"{n / total:.1%}") for v, n in t.classes])
            + (
                f"<p>The largest class has {ratio:.2f} × the rows of the smallest.</p>"
                if ratio
                else ""
            )
        )
    body.append(plot_figure(plots["target-associations"]))
    if t.associations:
        rows = [
            (
                a.column,
                a.test,
                a.statistic,
                ", ".join(fmt(d) for d in a.dof) or None,
                a.p_value,
                a.effect,
                a.effect_name,
                a.auc,
                a.n,
            )
            for a in t.associations
        ]
        body.append(
            "<h3>Tests of association</h3><p>Each column against the target, most significant first: "
            "the t-test of Pearson's r (numeric with numeric), Welch's t-test (numeric with two "
            "classes), one-way ANOVA (numeric with several groups) or Pearson's χ² test (categorical "
            "with categorical). A p-value is the chance of a relation at least this strong if there "
            "were none; with many rows, even a weak relation has a tiny p-value, so read the effect "
            "too. The AUC is that of the column alone on the sample, for a two-class target.</p>"
            + table(
                (
                    "column",
                    "test",
                    "statistic",
                    "dof",
                    "p-value",
                    "effect",
                    "measure",
                    "AUC",
                    "rows",
                ),
                rows,
            )
        )
    if t.skipped:
        items = "".join(
            f"<li><b>{escape(k if k != '*' else 'all columns')}</b>: {escape(v)}</li>"
            for k, v in t.skipped.items()
        )
        body.append(
            f"<details><summary>Not tested ({len(t.skipped)})</summary><ul>{items}</ul></details>"
        )
    return section("target", f"Target: {t.name}", "\n".join(body))
