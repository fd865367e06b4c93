"""Bad input gets a clear message, and a profile of odd data loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import SqlEngine
from sagelab.prep import profile, write_profile_report
from sagelab.session import Session


@pytest.fixture
def engine(home: Path) -> SqlEngine:
    return Session().sql_engine()


def _roundtrip(p: object, tmp_path: Path) -> str:
    """The profile serialises to JSON and writes a report: nothing crashes on odd data."""
    text = json.dumps(p.as_dict(), allow_nan=False)  # type: ignore[attr-defined]
    html = write_profile_report(p, tmp_path / "odd.html")  # type: ignore[arg-type]
    assert html.is_file()
    return text


def test_all_null_column(engine: SqlEngine, tmp_path: Path) -> None:
    p = profile(
        "SELECT i, NULL::DOUBLE AS nothing, NULL AS untyped FROM range(50) t(i)", engine=engine
    )
    for name in ("nothing", "untyped"):
        col = p.column(name)
        assert col.kind == "empty" and col.missing == 50 and col.count == 0 and col.mean is None
    assert [w.columns for w in p.warnings if w.kind == "empty"] == [("nothing",), ("untyped",)]
    _roundtrip(p, tmp_path)


def test_single_row_table(engine: SqlEngine, tmp_path: Path) -> None:
    p = profile("SELECT 1.5 AS x, 'a' AS s, 2 AS y", engine=engine, target="y")
    assert p.rows == 1 and p.column("x").mean == 1.5 and p.column("x").std is None
    assert p.correlations == {}
    assert p.target is not None and p.target.associations == []
    assert "fewer than two" in p.target.skipped["*"]
    assert [w.kind for w in p.warnings] == ["few_rows"]
    _roundtrip(p, tmp_path)


def test_empty_table(engine: SqlEngine, tmp_path: Path) -> None:
    p = profile("SELECT 1 AS a, 'x' AS b WHERE false", engine=engine)
    assert p.rows == 0 and [c.name for c in p.columns] == ["a", "b"]
    assert all(c.kind == "empty" for c in p.columns)
    assert [w.kind for w in p.warnings] == ["no_rows"]
    _roundtrip(p, tmp_path)


def test_column_of_mixed_types(engine: SqlEngine, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(95)) + "95,n/a\n96,unknown\n97,\n"
    )
    p = profile(str(path), engine=engine)
    amount = p.column("amount")
    assert amount.kind == "categorical" and amount.dtype == "VARCHAR"
    assert amount.mixed_share == pytest.approx(95 / 97)
    assert amount.missing == 1 and amount.count == 97
    warning = next(w for w in p.warnings if w.kind == "mixed_types")
    assert warning.columns == ("amount",) and "97.9%" in warning.message
    _roundtrip(p, tmp_path)


def test_unicode_and_sql_keyword_column_names(engine: SqlEngine, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "select": rng.normal(size=200),
            "from": rng.normal(size=200),
            'wei"rd name': rng.integers(0, 3, 200),
            "température °C": rng.normal(20, 5, 200),
            "名前": rng.choice(["a", "b"], 200),
            "group": rng.integers(0, 2, 200),
        }
    )
    path = tmp_path / "names.parquet"
    frame.to_parquet(path)
    p = profile(str(path), engine=engine, target="group")
    assert [c.name for c in p.columns] == list(frame.columns)
    assert p.column("température °C").mean == pytest.approx(frame["température °C"].mean())
    assert p.target is not None and {a.column for a in p.target.associations} >= {"名前", "select"}
    text = _roundtrip(p, tmp_path)
    assert "température °C" in json.loads(text)["variables"][3]["name"]
    html = (tmp_path / "odd.html").read_text(encoding="utf-8")
    assert "wei&quot;rd name" in html and "名前" in html


def test_repeated_column_names_in_a_query(engine: SqlEngine) -> None:
    p = profile("SELECT 1 AS a, 2 AS a, 3 AS b", engine=engine)
    assert [c.name for c in p.columns][:2] == ["a", "a"] or len(p.columns) == 3


def test_target_that_does_not_exist(engine: SqlEngine) -> None:
    with pytest.raises(InvalidInput) as err:
        profile("SELECT 1 AS label, 2 AS amount", engine=engine, target="lable")
    message = str(err.value)
    assert "'lable'" in message and "'label'" in message and "Did you mean 'label'" in message


def test_target_name_case_is_forgiven(engine: SqlEngine) -> None:
    p = profile(
        "SELECT range % 2 AS Label, range AS x FROM range(10)", engine=engine, target="label"
    )
    assert p.target is not None and p.target.name == "Label"


def test_missing_source_and_bad_query(engine: SqlEngine, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        profile(str(tmp_path / "nope.parquet"), engine=engine)
    with pytest.raises(InvalidInput, match=r"cannot be read|failed"):
        profile("SELECT no_such_column FROM range(3)", engine=engine)


@pytest.mark.parametrize("rows", [0, -5, 2.5, "100", True])
def test_bad_sample_rows(engine: SqlEngine, rows: object) -> None:
    with pytest.raises(InvalidInput, match="sample_rows"):
        profile("SELECT 1 AS a", engine=engine, sample_rows=rows)  # type: ignore[arg-type]


def test_bad_report_paths(engine: SqlEngine, tmp_path: Path) -> None:
    p = profile("SELECT 1 AS a", engine=engine)
    with pytest.raises(InvalidInput, match="is a folder"):
        write_profile_report(p, tmp_path)
    with pytest.raises(InvalidInput, match=r"\.html"):
        write_profile_report(p, tmp_path / "report.pdf")
    with pytest.raises(InvalidInput, match="Profile"):
        write_profile_report({"rows": 1}, tmp_path / "r.html")  # type: ignore[arg-type]


def test_unsupported_and_nested_types(engine: SqlEngine, tmp_path: Path) -> None:
    p = profile(
        "SELECT [i, i + 1] AS pair, {'k': i} AS obj, INTERVAL (i) DAY AS span, i AS n FROM range(20) t(i)",
        engine=engine,
    )
    assert [c.kind for c in p.columns] == ["unsupported", "unsupported", "unsupported", "numeric"]
    assert p.column("pair").distinct == 20 and p.column("pair").missing == 0
    _roundtrip(p, tmp_path)
