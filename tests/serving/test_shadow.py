"""Shadow variants: a sampled copy of the traffic, compared and logged, never returned.

A real server on 127.0.0.1 (two workers) with the module's two models: the
production variant serves one, the shadow variant the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from _endpoint_env import Served, csv_line, served_env, wait_until

from sagelab.algorithms import Prediction
from sagelab.cli import main
from sagelab.errors import InvalidInput
from sagelab.serving import DataCaptureConfig, VariantSpec
from sagelab.serving._shadow import prediction_difference

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REQUESTS = 120


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_env(tmp_path_factory.mktemp("shadow"), workers=2)


def _totals(env: Served, endpoint: str) -> dict[str, dict[str, float]]:
    d = env.session.endpoints.describe(endpoint)
    variants = [*d["ProductionVariants"], *d.get("ShadowProductionVariants", [])]
    return {v["VariantName"]: v["Metrics"] for v in variants}


def _send(env: Served, endpoint: str, n: int) -> list[httpx.Response]:
    with httpx.Client(base_url=env.url, timeout=30) as http:
        return [
            http.post(
                f"/endpoints/{endpoint}/invocations",
                content=csv_line(env.rows[i % len(env.rows)]),
                headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": f"r{i}"},
            )
            for i in range(n)
        ]


def test_a_shadow_gets_every_request_and_the_caller_gets_production_answers(
    env: Served,
) -> None:
    endpoints = env.session.endpoints
    described = endpoints.deploy(
        "shadowed",
        [
            VariantSpec("AllTraffic", env.job_a),
            VariantSpec("Challenger", env.job_b, shadow=True),
        ],
        data_capture=DataCaptureConfig(sampling_percentage=100, destination_s3_uri="s3://shadows/"),
    )
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["AllTraffic"]
    assert described["ShadowProductionVariants"][0]["SamplingPercentage"] == 100.0
    wait_until(
        lambda: env.invoke("shadowed", csv_line(env.rows[0])).status_code == 200, what="serving"
    )
    answers = _send(env, "shadowed", REQUESTS)
    rows = np.array([env.rows[i % len(env.rows)] for i in range(REQUESTS)])
    production = env.model(env.job_a).predict(rows).values
    challenger = env.model(env.job_b).predict(rows).values
    assert {r.status_code for r in answers} == {200}
    assert {r.headers["x-amzn-invoked-production-variant"] for r in answers} == {"AllTraffic"}
    got = [float(r.text) for r in answers]
    assert got == pytest.approx(list(production), rel=1e-6)
    # The shadow answered every copy; its difference from production is the one computed here.
    wait_until(
        lambda: _totals(env, "shadowed")["Challenger"]["Invocations"] >= REQUESTS + 1,
        timeout=30,
        what="the shadow's metrics",
    )
    totals = _totals(env, "shadowed")
    shadow = totals["Challenger"]
    assert shadow["Invocation5XXErrors"] == 0 and shadow["ModelLatency"] > 0
    assert shadow["ShadowDroppedRequests"] == 0
    expected = np.mean(np.abs(production - challenger))
    # The warm-up request above is in the mean too: allow for its one row.
    assert shadow["ShadowPredictionDifference"] == pytest.approx(expected, rel=0.05)
    assert totals["AllTraffic"]["ShadowPredictionDifference"] == 0
    # The shadow's answers are captured under its own name, with the request's id.
    lake = env.session.lake

    def captured(variant: str) -> dict[str, dict[str, object]]:
        out = {}
        for key in lake.list("shadows", prefix=f"shadowed/{variant}/").keys:
            for line in lake.get("shadows", key).decode().splitlines():
                record = json.loads(line)
                out[record["eventMetadata"].get("inferenceId", "")] = record
        return out

    wait_until(lambda: len(captured("Challenger")) >= REQUESTS, timeout=30, what="captures")
    records = captured("Challenger")
    assert float(records["r7"]["captureData"]["endpointOutput"]["data"]) == pytest.approx(
        challenger[7], rel=1e-6
    )
    assert float(
        captured("AllTraffic")["r7"]["captureData"]["endpointOutput"]["data"]
    ) == pytest.approx(production[7], rel=1e-6)


def test_a_shadow_samples_its_share_of_the_traffic(env: Served) -> None:
    endpoints = env.session.endpoints
    endpoints.deploy(
        "shadow-share",
        [
            VariantSpec("AllTraffic", env.job_a),
            VariantSpec("Challenger", env.job_b, shadow=True, sampling_percentage=25),
        ],
    )
    wait_until(
        lambda: env.invoke("shadow-share", csv_line(env.rows[0])).status_code == 200,
        what="serving",
    )
    n = 400
    assert {r.status_code for r in _send(env, "shadow-share", n)} == {200}
    wait_until(
        lambda: _totals(env, "shadow-share")["AllTraffic"]["Invocations"] >= n + 1,
        timeout=30,
        what="the production metrics",
    )
    wait_until(
        lambda: _totals(env, "shadow-share")["Challenger"]["Invocations"] > 0,
        timeout=30,
        what="the shadow's metrics",
    )
    copies = _totals(env, "shadow-share")["Challenger"]["Invocations"]
    # 25 % of 401 is 100, with a standard deviation of 8.7: six of them either side.
    assert 48 <= copies <= 152, copies


def test_a_failing_shadow_never_fails_the_caller(env: Served) -> None:
    """A shadow whose model cannot take the production's requests (its own feature
    count differs) fails every copy, counted against it alone."""
    endpoints = env.session.endpoints
    few = env.home.parent / "few.csv"
    data = np.loadtxt(env.home.parent / "cancer.csv", delimiter=",")
    np.savetxt(few, data[:, :6], delimiter=",", fmt="%.17g")
    job = env.session.training.submit(
        "xgboost", str(few), hyperparameters={"objective": "binary:logistic", "num_round": 3}
    )
    assert env.session.jobs.wait(job.name, timeout=300).status == "Completed"
    endpoints.deploy(
        "shadow-bad",
        [VariantSpec("AllTraffic", env.job_a), VariantSpec("Narrow", job.name, shadow=True)],
    )
    wait_until(
        lambda: env.invoke("shadow-bad", csv_line(env.rows[0])).status_code == 200,
        what="serving",
    )
    assert {r.status_code for r in _send(env, "shadow-bad", 30)} == {200}
    wait_until(
        lambda: _totals(env, "shadow-bad")["Narrow"]["Invocation4XXErrors"] >= 30,
        timeout=30,
        what="the shadow's errors",
    )
    totals = _totals(env, "shadow-bad")
    assert totals["AllTraffic"]["Invocation4XXErrors"] == 0
    assert totals["AllTraffic"]["Invocation5XXErrors"] == 0


def test_prediction_difference() -> None:
    assert prediction_difference([0.1, 0.5], [0.3, 0.5]) == pytest.approx(0.1)
    multiclass = Prediction(np.array([1.0]), probabilities=np.array([[0.1, 0.9]]))
    other = Prediction(np.array([1.0]), probabilities=np.array([[0.3, 0.7]]))
    assert prediction_difference(multiclass, other) == pytest.approx(0.2)
    assert prediction_difference([[0.2, 0.8]], [[0.4, 0.6]]) == pytest.approx(0.2)
    assert np.isnan(prediction_difference([0.1, 0.2], [0.1]))


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([("Only", True, None)], "needs a production variant besides its shadow"),
        ([("A", False, None), ("S1", True, None), ("S2", True, None)], "at most one shadow"),
        ([("A", False, 50.0)], "applies to shadow variants only"),
        ([("A", False, None), ("S", True, 0.0)], "must be in (0, 100]"),
        ([("A", False, None), ("S", True, 150.0)], "must be in (0, 100]"),
    ],
)
def test_bad_shadow_specs_are_refused(
    env: Served, variants: list[tuple[str, bool, float | None]], message: str
) -> None:
    specs = [
        VariantSpec(name, env.job_a, shadow=shadow, sampling_percentage=p)
        for name, shadow, p in variants
    ]
    with pytest.raises(InvalidInput) as caught:
        env.session.endpoints.deploy("shadow-refused", specs)
    assert message in str(caught.value)


def test_shadow_from_the_cli(env: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deploy", env.job_a, "-e", "shadow-cli", "--shadow", f"Challenger={env.job_b}:50"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Shadow Challenger" in out and "50% of requests" in out
    d = env.session.endpoints.describe("shadow-cli")
    assert d["ShadowProductionVariants"][0]["Model"] == env.job_b
