"""The profile report: one valid self-contained page with every section, PNGs beside it,
a copy in the lake, and progress along the way."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sagelab.lake import ARTIFACTS_BUCKET
from sagelab.prep import Profile, profile, profile_name, store_profile, write_profile_report
from sagelab.session import Session

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr", "rect"}
SECTIONS = {
    "header",
    "warnings",
    "columns",
    "distributions",
    "box-plots",
    "correlations",
    "scatter-matrix",
    "time-series",
    "target",
}
FIGURES = {
    "histograms",
    "box-plots",
    "scatter-matrix",
    "correlation-pearson",
    "correlation-spearman",
    "cramers-v",
    "time-series",
    "target-distribution",
    "target-associations",
}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.images: list[dict[str, str | None]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "img":
            self.images.append(found)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _parse(path: Path) -> _Page:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = _Page()
    page.feed(text)
    page.close()
    assert not page.errors, page.errors[:5]
    assert not page.stack, f"unclosed: {page.stack}"
    return page


@pytest.fixture
def session(home: Path) -> Session:
    return Session()


@pytest.fixture(scope="module")
def churn_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A mixed table with a datetime column, categories, missing values and a binary target."""
    rng = np.random.default_rng(7)
    n = 3000
    tenure = rng.integers(0, 72, n)
    charges = rng.normal(70, 20, n)
    frame = pd.DataFrame(
        {
            "signed_up": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "tenure": tenure,
            "monthly": charges,
            "total": tenure * charges + rng.normal(0, 50, n),
            "contract": rng.choice(["monthly", "yearly", "two-year"], n, p=[0.5, 0.3, 0.2]),
            "paperless": rng.random(n) < 0.6,
            "notes": np.where(rng.random(n) < 0.4, None, "called support"),
        }
    )
    frame["churn"] = (rng.random(n) < 1 / (1 + np.exp(0.05 * tenure - 1))).astype(int)
    path = tmp_path_factory.mktemp("churn") / "churn.parquet"
    frame.to_parquet(path)
    return str(path)


def test_report_has_every_section_and_figure(
    session: Session, churn_path: str, tmp_path: Path
) -> None:
    calls: list[tuple[int, int]] = []
    p = profile(
        churn_path,
        engine=session.sql_engine(),
        target="churn",
        progress=lambda d, t: calls.append((d, t)),
    )
    assert (
        calls
        and calls[-1][0] == calls[-1][1]
        and [d for d, _ in calls] == sorted(d for d, _ in calls)
    )
    out = write_profile_report(p, tmp_path / "deep" / "churn.html")
    assert out == tmp_path / "deep" / "churn.html"
    page = _parse(out)
    assert page.ids >= SECTIONS
    assert {f"plot-{name}" for name in FIGURES} <= page.ids
    assert {f"column-{n}" for n in range(len(p.columns))} <= page.ids
    files = tmp_path / "deep" / "churn_files"
    assert {png.stem for png in files.glob("*.png")} == FIGURES
    for png in files.glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
    embedded = {str(img["alt"]) for img in page.images}
    assert len(page.images) == len(FIGURES) and all(embedded)
    for img in page.images:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    html = out.read_text(encoding="utf-8")
    assert "Welch" in html and "Class balance" in html and "Tests of association" in html
    assert not list((tmp_path / "deep").glob(".*.tmp"))  # the atomic writes left nothing behind


def test_report_without_target_or_dates_explains_what_is_missing(
    session: Session, tmp_path: Path
) -> None:
    p = profile(
        "SELECT i AS a, i * 2 + 1 AS b, (i % 4)::VARCHAR || 'x' AS c FROM range(300) t(i)",
        engine=session.sql_engine(),
    )
    page = _parse(write_profile_report(p, tmp_path / "plain.html"))
    assert page.ids >= SECTIONS
    html = (tmp_path / "plain.html").read_text(encoding="utf-8")
    assert "No target was named" in html and "no datetime column" in html
    assert "cramers-v" not in {png.stem for png in (tmp_path / "plain_files").glob("*.png")}


def test_store_profile_in_the_lake(session: Session, churn_path: str, tmp_path: Path) -> None:
    p = profile(churn_path, engine=session.sql_engine(), target="churn")
    html = write_profile_report(p, tmp_path / "r.html")
    uri = store_profile(p, session.lake, "churn-2024", report=html)
    assert uri == f"s3://{ARTIFACTS_BUCKET}/profiles/churn-2024/"
    keys = set(session.lake.list(ARTIFACTS_BUCKET, prefix="profiles/churn-2024/").keys)
    assert {"profiles/churn-2024/profile.json", "profiles/churn-2024/report.html"} <= keys
    assert "profiles/churn-2024/report_files/histograms.png" in keys
    stored = json.loads(session.lake.get(ARTIFACTS_BUCKET, "profiles/churn-2024/profile.json"))
    assert stored["rows"] == 3000 and stored["target"]["name"] == "churn"
    for bad in ("", "../up", "a/b", "x" * 101):
        with pytest.raises(Exception, match="profile name"):
            store_profile(p, session.lake, bad)


def test_profile_names_from_sources() -> None:
    assert profile_name("sales.orders") == "sales.orders"
    assert profile_name("SELECT * FROM x") == "query"
    assert profile_name("/data/2024/clicks.jsonl.gz") == "clicks"
    assert profile_name("s3://raw/events/") == "events"


def test_as_dict_is_plain_json(session: Session, churn_path: str) -> None:
    p = profile(churn_path, engine=session.sql_engine(), target="churn")
    assert isinstance(p, Profile)
    data = json.loads(json.dumps(p.as_dict(), allow_nan=False))
    names = [v["name"] for v in data["variables"]]
    assert names == [
        "signed_up",
        "tenure",
        "monthly",
        "total",
        "contract",
        "paperless",
        "notes",
        "churn",
    ]
    kinds = {v["name"]: v["kind"] for v in data["variables"]}
    assert kinds == {
        "signed_up": "datetime",
        "tenure": "numeric",
        "monthly": "numeric",
        "total": "numeric",
        "contract": "categorical",
        "paperless": "boolean",
        "notes": "categorical",
        "churn": "categorical",
    }
    assert set(data["correlations"]) == {"pearson", "spearman", "cramers_v"}
    assert data["time_series"]["column"] == "signed_up"
    assert {w["kind"] for w in data["warnings"]} >= {"constant"}  # notes: one value or missing
