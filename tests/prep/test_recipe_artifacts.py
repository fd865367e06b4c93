"""Fitted recipes on storage: versions in the lake, folders a model carries, no pickle, checksums."""

from __future__ import annotations

import io
import json
import operator
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.prep import FittedRecipe, fit_recipe, load_recipe, recipe_versions
from sagelab.store import Store

RECIPE = """
name: cancer
target: target
steps:
  - step: impute
    strategy: knn
  - step: scale
  - step: pca
    n_components: 4
    keep: true
"""


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def engine(store: Store, lake: Lake) -> SqlEngine:
    return SqlEngine(Catalog(store), lake)


@pytest.fixture(scope="module")
def cancer() -> pa.Table:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return pa.Table.from_pandas(frame, preserve_index=False)


def fitted(engine: SqlEngine, data: pa.Table, recipe: str = RECIPE) -> FittedRecipe:
    return fit_recipe(recipe, data, engine=engine)


def test_each_fit_is_a_new_version(engine: SqlEngine, lake: Lake, cancer: pa.Table) -> None:
    first = fitted(engine, cancer)
    second = fitted(engine, cancer.slice(0, 300))
    assert (first.version, second.version) == (1, 2)
    assert recipe_versions("cancer", lake=lake) == [1, 2]
    latest, older = load_recipe("cancer", lake=lake), load_recipe("cancer", 1, lake=lake)
    assert latest.version == 2 and older.version == 1
    assert older.transform(cancer).equals(first.transform(cancer))
    assert latest.transform(cancer).equals(second.transform(cancer))
    by_uri = load_recipe("s3://artifacts/recipes/cancer/v1/", lake=lake)
    assert by_uri.transform(cancer).equals(first.transform(cancer))
    assert by_uri.describe()["steps"] == ["1. impute", "2. scale", "3. pca"]


def test_a_model_folder_carries_the_recipe(
    engine: SqlEngine, cancer: pa.Table, tmp_path: Path
) -> None:
    recipe = fitted(engine, cancer)
    folder = recipe.save(tmp_path / "model" / "recipe")
    again = load_recipe(folder)
    assert again.name == "cancer" and again.version == 1
    assert again.transform(cancer).equals(recipe.transform(cancer))
    assert again.output_schema() == recipe.output_schema()


def test_no_pickle_anywhere(engine: SqlEngine, lake: Lake, cancer: pa.Table) -> None:
    fitted(engine, cancer)
    keys = lake.list("artifacts", "recipes/cancer/v1/").keys
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == [
        "estimators.skops",
        "recipe.yaml",
        "sagelab-recipe.json",
    ]
    skops = lake.get("artifacts", "recipes/cancer/v1/estimators.skops")
    with zipfile.ZipFile(io.BytesIO(skops)) as archive:  # skops: a zip of JSON and .npy
        assert all(not name.endswith((".pkl", ".pickle")) for name in archive.namelist())
        assert json.loads(archive.read("schema.json"))
    meta = json.loads(lake.get("artifacts", "recipes/cancer/v1/sagelab-recipe.json"))
    assert set(meta["sha256"]) == {"estimators.skops", "recipe.yaml"}
    assert meta["versions"]["scikit-learn"] and meta["target"]["name"] == "target"


def test_a_damaged_or_replaced_file_is_refused(
    engine: SqlEngine, lake: Lake, cancer: pa.Table
) -> None:
    fitted(engine, cancer)
    key = "recipes/cancer/v1/estimators.skops"
    good = lake.get("artifacts", key)
    lake.put("artifacts", key, good[:-10])
    with pytest.raises(InvalidInput, match="does not match the checksum"):
        load_recipe("cancer", lake=lake)
    lake.delete("artifacts", key)
    with pytest.raises(NotFound, match=r"estimators\.skops"):
        load_recipe("cancer", lake=lake)
    lake.put("artifacts", key, good)
    meta_key = "recipes/cancer/v1/sagelab-recipe.json"
    lake.put("artifacts", meta_key, b"{not json")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        load_recipe("cancer", lake=lake)


def test_an_untrusted_type_is_refused_even_with_a_matching_checksum(
    engine: SqlEngine, lake: Lake, cancer: pa.Table
) -> None:
    import hashlib

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    fitted(engine, cancer)
    hostile = sio.dumps({"1/numbers": FunctionTransformer(func=operator.attrgetter("x"))})
    prefix = "recipes/cancer/v1/"
    lake.put("artifacts", prefix + "estimators.skops", hostile)
    meta = json.loads(lake.get("artifacts", prefix + "sagelab-recipe.json"))
    meta["sha256"]["estimators.skops"] = hashlib.sha256(hostile).hexdigest()
    lake.put("artifacts", prefix + "sagelab-recipe.json", json.dumps(meta).encode())
    with pytest.raises(InvalidInput, match=r"does not trust: operator\.attrgetter"):
        load_recipe("cancer", lake=lake)


def test_unknown_and_hostile_names(engine: SqlEngine, lake: Lake, cancer: pa.Table) -> None:
    with pytest.raises(NotFound, match="no fitted recipe named 'nothing'"):
        load_recipe("nothing", lake=lake)
    fitted(engine, cancer)
    with pytest.raises(NotFound, match=r"no version 7 \(versions: v1\)"):
        load_recipe("cancer", 7, lake=lake)
    for name in ("Cancer", "a b", "-x", "x" * 80, "na\x00me"):
        with pytest.raises(InvalidInput, match="not valid"):
            load_recipe(name, lake=lake)
    with pytest.raises(InvalidInput, match="does not name a recipe version"):
        load_recipe("s3://artifacts/recipes/../warehouse/v1/", lake=lake)
    with pytest.raises(InvalidInput, match="recipe name"):
        fit_recipe(RECIPE, cancer, engine=engine, name="../../etc")
    with pytest.raises(NotFound, match="no recipe folder"):
        load_recipe(Path("/nonexistent/recipe"))


def test_a_folder_listing_files_outside_itself_is_refused(
    engine: SqlEngine, cancer: pa.Table, tmp_path: Path
) -> None:
    folder = fitted(engine, cancer).save(tmp_path / "recipe")
    meta_path = folder / "sagelab-recipe.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"]["../secret.txt"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="outside it"):
        load_recipe(folder)


def test_recipes_without_estimators_save_only_json(engine: SqlEngine, lake: Lake) -> None:
    data = pd.DataFrame({"a": [1.0, 2.0, 100.0], "b": ["x", "y", "x"]})
    spec = {
        "name": "plain",
        "steps": [
            {"step": "outliers", "columns": ["a"], "method": "log"},
            {"step": "drop_columns", "columns": ["b"]},
        ],
    }
    recipe = fit_recipe(spec, pa.Table.from_pandas(data), engine=engine)
    keys = lake.list("artifacts", "recipes/plain/v1/").keys
    assert not any(k.endswith(".skops") for k in keys)
    assert load_recipe("plain", lake=lake).transform(data).equals(recipe.transform(data))
