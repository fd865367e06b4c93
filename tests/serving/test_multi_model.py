"""Multi-model endpoints over HTTP: fifty models behind one endpoint under a budget that fits ten."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from _endpoint_env import Served, csv_line, served_env, wait_until
from sklearn.datasets import load_breast_cancer

from sagelab.algorithms import Algorithm, InMemorySource, get_algorithm
from sagelab.algorithms.testing import RecordingCallbacks
from sagelab.cli import main
from sagelab.errors import InvalidInput
from sagelab.serving import TARGET_MODEL_HEADER, Predictor, VariantSpec, model_footprint
from sagelab.training._model import save_model, training_metadata

BUCKET, PREFIX = "models", "fleet/"
MODELS = 50
FITS = 10
#: Three shallow rounds: every model is small and about as large as the others.
HYPERPARAMETERS = {"objective": "binary:logistic", "num_round": 3, "max_depth": 2, "nthread": 1}


@dataclass
class Fleet:
    served: Served
    algorithms: dict[str, Algorithm]  # by target path
    budget_bytes: int
    fits: int  # the most models whose footprints add up to no more than the budget

    def invoke(self, endpoint: str, target: str | None, rows: np.ndarray) -> httpx.Response:
        headers = {} if target is None else {"X-Amzn-SageMaker-Target-Model": target}
        return self.served.invoke(endpoint, "\n".join(csv_line(r) for r in rows), **headers)

    def expected(self, target: str, rows: np.ndarray) -> np.ndarray:
        return self.algorithms[target].predict(rows).values


def _train_and_save(served: Served, target: str, seed: int) -> Algorithm:
    """An xgboost model fitted through the algorithm contract on its own bootstrap of the
    data, saved as a model folder under the fleet's prefix (as training saves one)."""
    data = load_breast_cancer()
    rng = np.random.default_rng(seed)
    rows = rng.choice(500, size=250, replace=False)
    algorithm = get_algorithm("xgboost")(HYPERPARAMETERS, seed=seed)
    algorithm.fit(InMemorySource(data.data[rows], data.target[rows]), None, RecordingCallbacks())
    save_model(
        served.session.lake,
        algorithm,
        f"s3://{BUCKET}/{PREFIX}{target}/",
        training_metadata(
            AlgorithmName="xgboost",
            ProblemType=algorithm.problem_type(),
            HyperParameters=algorithm.params,
            Seed=seed,
            Target=None,
            PositionalFeatures=True,
            FeatureNames=algorithm.feature_names,
        ),
    )
    return algorithm


def _footprint(served: Served, target: str) -> int:
    listed = served.session.lake.list(BUCKET, f"{PREFIX}{target}/").objects
    return model_footprint(sum(o.size for o in listed))


def _metric(served: Served, name: str, endpoint: str = "fleet") -> float:
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    found = re.search(
        rf'^{name}\{{endpoint="{endpoint}",variant="AllTraffic"\}} (\S+)$', text, re.MULTILINE
    )
    return float(found.group(1)) if found else 0.0


def _loaded(served: Served, endpoint: str = "fleet") -> float:
    return _metric(served, "sagelab_endpoint_loaded_models", endpoint)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    # One worker: LoadedModelCount is then one instance's count, which the budget bounds.
    env = served_env(tmp_path_factory.mktemp("multi-model"), workers=1)
    served = next(env)
    try:
        targets = [f"model-{i:02d}" for i in range(MODELS)]
        algorithms = {t: _train_and_save(served, t, seed=i) for i, t in enumerate(targets)}
        sizes = sorted(_footprint(served, t) for t in targets)
        # Room for the ten largest, with half the smallest to spare.
        budget = sum(sizes[-FITS:]) + sizes[0] // 2
        fits = max(k for k in range(MODELS + 1) if sum(sizes[:k]) <= budget)
        assert fits == FITS, f"the models differ too much in size for this test: {sizes}"
        served.session.endpoints.deploy(
            "fleet",
            [
                VariantSpec(
                    "AllTraffic",
                    f"s3://{BUCKET}/{PREFIX}",
                    mode="MultiModel",
                    memory_budget_mb=budget / (1024 * 1024),
                )
            ],
        )
        yield Fleet(served, algorithms, budget, fits)
    finally:
        env.close()


def test_fifty_models_answer_like_themselves_within_the_budget(fleet: Fleet) -> None:
    served, rows = fleet.served, fleet.served.rows[:3]
    d = served.session.endpoints.describe("fleet")["ProductionVariants"][0]
    assert d["Mode"] == "MultiModel" and d["ModelDataUrl"] == f"s3://{BUCKET}/{PREFIX}"
    peak = 0.0
    for target in fleet.algorithms:
        answer = fleet.invoke("fleet", target, rows)
        assert answer.status_code == 200, answer.text
        got = [float(x) for x in answer.text.split()]
        assert got == pytest.approx(fleet.expected(target, rows), rel=1e-6), target
        loaded = _loaded(served)
        assert 1 <= loaded <= fleet.fits
        peak = max(peak, loaded)
    assert peak == fleet.fits  # the budget is used, and never overrun
    # Models are told apart: two of them disagree somewhere on the held-out rows.
    many = served.rows[:40]
    assert not np.allclose(fleet.expected("model-00", many), fleet.expected("model-01", many))
    loads = _metric(served, "sagelab_endpoint_model_loading_time_microseconds_count")
    assert loads >= MODELS
    assert _metric(served, "sagelab_endpoint_model_loading_time_microseconds_sum") > 0


def test_repeated_requests_hit_the_cache_and_evicted_models_load_again(fleet: Fleet) -> None:
    served, rows = fleet.served, fleet.served.rows[:2]
    warm = list(fleet.algorithms)[-1]
    assert fleet.invoke("fleet", warm, rows).status_code == 200
    hits = _metric(served, "sagelab_endpoint_model_cache_hit_sum")
    lookups = _metric(served, "sagelab_endpoint_model_cache_hit_count")
    loads = _metric(served, "sagelab_endpoint_model_loading_time_microseconds_count")
    for _ in range(5):
        answer = fleet.invoke("fleet", warm, rows)
        assert [float(x) for x in answer.text.split()] == pytest.approx(
            fleet.expected(warm, rows), rel=1e-6
        )
    assert _metric(served, "sagelab_endpoint_model_cache_hit_sum") == hits + 5
    assert _metric(served, "sagelab_endpoint_model_cache_hit_count") == lookups + 5
    assert _metric(served, "sagelab_endpoint_model_loading_time_microseconds_count") == loads
    # Touching ten other models pushes the first out; asking for it again loads it again.
    for target in list(fleet.algorithms)[: FITS + 1]:
        assert fleet.invoke("fleet", target, rows).status_code == 200
    before = _metric(served, "sagelab_endpoint_model_loading_time_microseconds_count")
    assert fleet.invoke("fleet", warm, rows).status_code == 200
    assert _metric(served, "sagelab_endpoint_model_loading_time_microseconds_count") == before + 1
    assert _loaded(served) <= fleet.fits

    endpoints = served.session.endpoints

    def recorded() -> bool:
        m = endpoints.describe("fleet")["ProductionVariants"][0]["Metrics"]
        return m["ModelCacheHit"] > 0 and m["ModelLoadingTime"] > 0 and m["LoadedModelCount"] > 0

    wait_until(recorded, what="the multi-model metric series")
    m = endpoints.describe("fleet")["ProductionVariants"][0]["Metrics"]
    assert 0 < m["ModelCacheHit"] < 1  # a hit rate: some requests hit, some loaded
    series = endpoints.metrics("fleet", "LoadedModelCount")
    assert series and all(0 <= p["Value"] <= fleet.fits for p in series)
    hit_points = endpoints.metrics("fleet", "ModelCacheHit")
    assert all(0 <= p["Value"] <= 1 for p in hit_points)


def test_a_model_added_after_the_deploy_is_served(fleet: Fleet) -> None:
    late = "late/model-new"
    fleet.algorithms[late] = _train_and_save(fleet.served, late, seed=1000)
    rows = fleet.served.rows[:4]
    answer = fleet.invoke("fleet", late, rows)
    assert answer.status_code == 200, answer.text
    assert [float(x) for x in answer.text.split()] == pytest.approx(
        fleet.expected(late, rows), rel=1e-6
    )
    # The trailing '/' of a folder is accepted too.
    assert fleet.invoke("fleet", late + "/", rows).status_code == 200


@pytest.mark.parametrize(
    ("target", "status", "words"),
    [
        (None, 400, "X-Amzn-SageMaker-Target-Model"),
        ("", 400, "X-Amzn-SageMaker-Target-Model"),
        ("../fleet/model-00", 400, "'..'"),
        ("model-00/../../other", 400, "'..'"),
        ("/fleet/model-00", 400, "absolute"),
        ("s3://models/fleet/model-00", 400, "absolute"),
        ("model-00\\..\\x", 400, "backslash"),
        ("%2e%2e/%2e%2e/secrets", 400, "not valid"),
        ("a//b", 400, "empty"),
        ("x" * 2000, 400, "limit"),
        ("model-99", 404, "'model-99'"),
        ("model-0", 404, "'model-0'"),
        ("fleet", 404, "'fleet'"),
    ],
)
def test_bad_targets_are_refused_and_named(
    fleet: Fleet, target: str | None, status: int, words: str
) -> None:
    answer = fleet.invoke("fleet", target, fleet.served.rows[:1])
    assert answer.status_code == status, answer.text
    assert words in answer.json()["Message"]
    assert fleet.invoke("fleet", "model-03", fleet.served.rows[:1]).status_code == 200


def test_a_corrupted_model_is_refused_while_the_others_serve(fleet: Fleet) -> None:
    served, rows = fleet.served, fleet.served.rows[:2]
    fleet.algorithms["damaged"] = _train_and_save(served, "damaged", seed=2000)
    lake = served.session.lake
    model_file = next(
        o.key for o in lake.list(BUCKET, f"{PREFIX}damaged/").objects if o.key.endswith(".ubj")
    )
    damaged = bytearray(lake.get(BUCKET, model_file))
    damaged[len(damaged) // 2] ^= 0xFF
    lake.put(BUCKET, model_file, bytes(damaged))
    for _ in range(2):  # refused every time, not loaded on a second try
        answer = fleet.invoke("fleet", "damaged", rows)
        assert answer.status_code == 500
        message = answer.json()["Message"]
        assert "'damaged'" in message and "checksum" in message
    for target in ("model-05", "model-48"):
        answer = fleet.invoke("fleet", target, rows)
        assert answer.status_code == 200
        assert [float(x) for x in answer.text.split()] == pytest.approx(
            fleet.expected(target, rows), rel=1e-6
        )


def test_idle_models_are_unloaded(fleet: Fleet) -> None:
    served = fleet.served
    served.session.endpoints.deploy(
        "fleet-cold",
        [
            VariantSpec(
                "AllTraffic", f"s3://{BUCKET}/{PREFIX}", mode="MultiModel", model_idle_seconds=1
            )
        ],
    )
    rows = served.rows[:1]
    loads = "sagelab_endpoint_model_loading_time_microseconds_count"
    for target in ("model-10", "model-11"):
        assert fleet.invoke("fleet-cold", target, rows).status_code == 200
    assert _metric(served, loads, "fleet-cold") == 2
    wait_until(lambda: _loaded(served, "fleet-cold") == 0, timeout=30, what="cold models to go")
    # The budget is far from full, so only going cold unloaded it: it loads again.
    assert fleet.invoke("fleet-cold", "model-10", rows).status_code == 200
    assert _metric(served, loads, "fleet-cold") == 3


def test_concurrent_first_requests_share_one_load(fleet: Fleet) -> None:
    served = fleet.served
    served.session.endpoints.deploy(
        "fleet-burst",
        [VariantSpec("AllTraffic", f"s3://{BUCKET}/{PREFIX}", mode="MultiModel")],
    )
    rows = served.rows[:1]
    body = csv_line(rows[0])
    url = f"{served.url}/endpoints/fleet-burst/invocations"
    headers = {"Content-Type": "text/csv", TARGET_MODEL_HEADER: "model-20"}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(
                await asyncio.gather(
                    *(client.post(url, content=body, headers=headers) for _ in range(8))
                )
            )

    answers = asyncio.run(burst())
    assert all(a.status_code == 200 for a in answers)
    expected = fleet.expected("model-20", rows)[0]
    assert all(float(a.text) == pytest.approx(expected, rel=1e-6) for a in answers)
    loads = _metric(served, "sagelab_endpoint_model_loading_time_microseconds_count", "fleet-burst")
    assert loads == 1
    assert _metric(served, "sagelab_endpoint_model_cache_hit_count", "fleet-burst") == 8


def test_multi_model_specs_are_checked(fleet: Fleet) -> None:
    endpoints = fleet.served.session.endpoints
    with pytest.raises(InvalidInput, match="folder inside a bucket"):
        endpoints.deploy("mm-bad", [VariantSpec("AllTraffic", "s3://models", mode="MultiModel")])
    with pytest.raises(InvalidInput, match="SingleModel or MultiModel"):
        endpoints.deploy("mm-bad", [VariantSpec("AllTraffic", "s3://models/x/", mode="Many")])
    with pytest.raises(InvalidInput, match="MultiModel variants only"):
        endpoints.deploy(
            "mm-bad", [VariantSpec("AllTraffic", fleet.served.job_a, memory_budget_mb=10)]
        )
    with pytest.raises(InvalidInput, match="positive number"):
        endpoints.deploy(
            "mm-bad",
            [VariantSpec("AllTraffic", "s3://models/x/", mode="MultiModel", memory_budget_mb=0)],
        )
    assert "mm-bad" not in endpoints.revisions()


def test_multi_model_cli_and_predictor(
    fleet: Fleet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = fleet.served
    monkeypatch.setenv("SAGELAB_SERVE_URL", served.url)
    prefix = f"s3://{BUCKET}/{PREFIX}"
    deploy = ["deploy", "--multi-model", prefix, "--endpoint", "fleet-cli"]
    assert main([*deploy, "--memory-budget-mb", "1", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)["ProductionVariants"][0]
    assert described["Mode"] == "MultiModel" and described["MemoryBudgetMB"] == 1
    rows = served.rows[:2]
    assert (
        main(["invoke", "fleet-cli", "--body", csv_line(rows[0]), "--target-model", "model-07"])
        == 0
    )
    out = capsys.readouterr().out
    assert float(out) == pytest.approx(fleet.expected("model-07", rows)[0], rel=1e-6)
    assert main(["invoke", "fleet-cli", "--body", csv_line(rows[0])]) == 1
    assert "X-Amzn-SageMaker-Target-Model" in capsys.readouterr().err
    predictor = Predictor("fleet-cli")
    try:
        answer = predictor.predict(rows, target_model="model-08")
    finally:
        predictor.close()
    scores = [p["score"] for p in answer["predictions"]]
    assert scores == pytest.approx(fleet.expected("model-08", rows), rel=1e-6)
    # MODEL and --multi-model are exclusive.
    assert main(["deploy", served.job_a, "--multi-model", prefix, "--endpoint", "x"]) == 1
    assert "--multi-model" in capsys.readouterr().err
