"""Blue/green endpoint updates: canary and linear traffic shifting, automatic rollback.

A real server on 127.0.0.1 (two workers) serves while updates run; client threads
send a bounded load throughout and every answer is kept, so the tests can tell which
fleet answered what (``X-Amzn-Invoked-Production-Variant`` names the new fleet's
variants ``…@green`` while an update runs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _endpoint_env import (
    XGB,
    Load,
    Served,
    deploy_served,
    served_env,
    wait_until,
    with_script,
)

from sagelab.cli import main
from sagelab.errors import Conflict, InvalidInput
from sagelab.serving import GREEN_SUFFIX, DeploymentConfig, RollbackAlarm, VariantSpec
from sagelab.serving._rollout import RolloutManager

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_env(tmp_path_factory.mktemp("rollout"), workers=2)


def _statuses(env: Served, endpoint: str, stop: threading.Event) -> list[str]:
    """Watch the endpoint's status from another thread; the distinct statuses in order."""
    seen: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            status = env.session.endpoints.describe(endpoint)["EndpointStatus"]
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()
    return seen


# ---------------------------------------------------------------------- the config
def test_sagemaker_shaped_configs_parse_and_round_trip() -> None:
    config = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 30,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
            "TerminationWaitInSeconds": 60,
            "MaximumExecutionTimeoutInSeconds": 900,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [
                {"AlarmName": "errors", "MetricName": "Invocation5XXErrors", "Threshold": 0.01},
                {"AlarmName": "slow", "MetricName": "ModelLatency", "Threshold": 20000},
            ]
        },
    }
    parsed = DeploymentConfig.parse(config)
    assert parsed.routing == "LINEAR" and parsed.wait_seconds == 30
    assert parsed.shares(4) == [0.25, 0.5, 0.75, 1.0]
    assert [a.metric for a in parsed.alarms] == ["Invocation5XXErrors", "ModelLatency"]
    assert DeploymentConfig.parse(parsed.as_dict()) == parsed
    canary = DeploymentConfig(routing="CANARY", size_type="INSTANCE_COUNT", size=1)
    assert canary.shares(4) == [0.25, 1.0]
    assert canary.shares(1) == [1.0]
    assert DeploymentConfig().shares(3) == [1.0]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"BlueGreen": {}}, "Unknown field BlueGreen"),
        (
            {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARI"}}},
            "'CANARY'",
        ),
        (
            {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY"}}},
            "needs TrafficRoutingConfiguration.CanarySize",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 150},
                    }
                }
            },
            "in (0, 100]",
        ),
        (
            {"AutoRollbackConfiguration": {"Alarms": [{"MetricName": "ModelLatencyy"}]}},
            "'ModelLatency'",
        ),
        (
            {
                "AutoRollbackConfiguration": {
                    "Alarms": [{"MetricName": "Invocation5XXErrors", "Threshold": 5}]
                }
            },
            "share of invocations in [0, 1]",
        ),
        ({"BlueGreenUpdatePolicy": "fast"}, "BlueGreenUpdatePolicy must be a mapping"),
        (
            {"BlueGreenUpdatePolicy": {"MaximumExecutionTimeoutInSeconds": 0}},
            "MaximumExecutionTimeoutInSeconds must be",
        ),
    ],
)
def test_bad_configs_are_refused_with_the_field_named(config: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match="DeploymentConfig is not valid") as caught:
        DeploymentConfig.parse(config)
    assert message in str(caught.value)


def test_an_alarm_judges_the_new_fleets_requests_only() -> None:
    errors = RollbackAlarm("errors", "Invocation5XXErrors", 0.05, min_invocations=20)
    # invocations, 4xx, 5xx, model µs, overhead µs, timed
    assert errors.breached([10, 0, 5, 0, 0, 5]) is None  # too few requests to judge
    assert errors.breached([100, 0, 5, 0, 0, 95]) is None  # 5 % is not above 5 %
    reason = errors.breached([100, 0, 10, 0, 0, 90])
    assert reason is not None and "10.0% of 100 requests" in reason
    slow = RollbackAlarm("slow", "ModelLatency", 1000.0, min_invocations=1)
    assert slow.breached([4, 0, 0, 4 * 900.0, 0, 4]) is None
    assert "mean of 1,500 µs" in (slow.breached([4, 0, 0, 6000.0, 0, 4]) or "")


# ---------------------------------------------------------------------- without a server
def test_a_new_endpoint_takes_no_deployment_config(env: Served) -> None:
    with pytest.raises(InvalidInput, match="applies to updates"):
        env.session.endpoints.deploy(
            "bg-new", [VariantSpec("AllTraffic", env.job_a)], deployment_config=DeploymentConfig()
        )


def test_time_driven_steps_advance_when_the_endpoint_is_waited_for(env: Served) -> None:
    endpoints = env.session.endpoints
    endpoints.deploy("bg-time", [VariantSpec("AllTraffic", env.job_a)])
    config = DeploymentConfig(routing="LINEAR", size=50, wait_seconds=0.5)
    started = endpoints.deploy(
        "bg-time", [VariantSpec("AllTraffic", env.job_b)], update=True, deployment_config=config
    )
    assert started["EndpointStatus"] == "Updating"
    pending = started["PendingDeploymentSummary"]
    assert (pending["Step"], pending["Steps"], pending["TrafficShare"]) == (1, 2, 0.5)
    assert started["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.5)
    assert pending["ProductionVariants"][0]["ServedAs"] == "AllTraffic" + GREEN_SUFFIX
    # No other update while this one runs.
    with pytest.raises(Conflict, match="Updating"):
        endpoints.deploy("bg-time", [VariantSpec("AllTraffic", env.job_a)], update=True)
    with pytest.raises(Conflict, match="Updating"):
        endpoints.update_weights("bg-time", {"AllTraffic": 2.0})
    shares: list[float] = []
    done = endpoints.wait(
        "bg-time",
        timeout=30,
        poll=0.1,
        on_change=lambda d: shares.append(
            (d.get("PendingDeploymentSummary") or {}).get("TrafficShare", 1.0)
        ),
    )
    assert done["EndpointStatus"] == "InService"
    assert shares[0] == 0.5 and shares[-1] == 1.0
    assert done["ProductionVariants"][0]["Model"] == env.job_b
    assert done["LastDeployment"]["Status"] == "Completed"
    assert "PendingDeploymentSummary" not in done


def test_an_update_that_outlasts_its_time_limit_is_rolled_back(env: Served) -> None:
    endpoints = env.session.endpoints
    endpoints.deploy("bg-timeout", [VariantSpec("AllTraffic", env.job_a)])
    before = endpoints.describe("bg-timeout")
    config = DeploymentConfig(routing="CANARY", size=10, wait_seconds=60, max_execution_seconds=0.3)
    endpoints.deploy(
        "bg-timeout",
        [VariantSpec("AllTraffic", env.job_b)],
        update=True,
        deployment_config=config,
    )
    manager = RolloutManager(endpoints.store, settle_seconds=0.2)
    time.sleep(0.4)
    assert "rolling back" in (manager.advance("bg-timeout") or "")
    rolling = endpoints.describe("bg-timeout")
    assert rolling["EndpointStatus"] == "RollingBack"
    assert "MaximumExecutionTimeoutInSeconds" in rolling["FailureReason"]
    time.sleep(0.3)
    manager.advance("bg-timeout")
    after = endpoints.describe("bg-timeout")
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert after["ProductionVariants"][0]["Model"] == before["ProductionVariants"][0]["Model"]
    assert after["LastDeployment"]["Status"] == "RolledBack"


# ---------------------------------------------------------------------- under load
def test_a_good_model_completes_a_canary_rollout_under_load(env: Served) -> None:
    endpoints = env.session.endpoints
    body = deploy_served(env, "bg-canary", env.job_a)
    config = DeploymentConfig(
        routing="CANARY",
        size=25,
        wait_seconds=3,
        termination_wait_seconds=1,
        alarms=(RollbackAlarm("errors", "Invocation5XXErrors", 0.01),),
    )
    stop = threading.Event()
    seen = _statuses(env, "bg-canary", stop)
    with Load(env, "bg-canary", body) as load:
        time.sleep(0.5)
        endpoints.deploy(
            "bg-canary",
            [VariantSpec("AllTraffic", env.job_b)],
            update=True,
            deployment_config=config,
        )
        done = endpoints.wait("bg-canary", timeout=60)
        time.sleep(1.0)  # served on the new config a moment
    stop.set()
    assert load.failures == []
    counts = load.by_variant()
    assert set(counts) == {"AllTraffic", "AllTraffic" + GREEN_SUFFIX}
    assert all(set(c) == {200} for c in counts.values()), counts
    assert done["EndpointStatus"] == "InService"
    assert done["LastDeployment"]["Status"] == "Completed"
    assert "Updating" in seen and "RollingBack" not in seen
    # The canary took about a quarter of the traffic during its first step.
    green = [t for t, _, v in load.answers if v.endswith(GREEN_SUFFIX)]
    assert green, "the new fleet served nothing"


def test_a_slow_model_is_rolled_back_by_a_latency_alarm(env: Served) -> None:
    endpoints = env.session.endpoints
    body = deploy_served(env, "bg-slow", env.job_a)
    slow = env.session.training.submit(
        "xgboost",
        str(env.home.parent / "cancer.csv"),
        hyperparameters={**XGB, "num_round": 12000, "eta": 0.01, "max_depth": 6},
    )
    assert env.session.jobs.wait(slow.name, timeout=600).status == "Completed"
    with Load(env, "bg-slow", body) as load:
        time.sleep(2.0)
    wait_until(lambda: endpoints.metrics("bg-slow", "ModelLatency"), what="a latency point")
    # The alarm's threshold: twice the serving model's mean latency on this machine now
    # (the slow model, 12,000 trees, takes some twenty times as long).
    fast_us = endpoints.describe("bg-slow")["ProductionVariants"][0]["Metrics"]["ModelLatency"]
    assert load.failures == [] and fast_us > 0
    config = DeploymentConfig(
        routing="CANARY",
        size=50,
        wait_seconds=30,
        alarms=(RollbackAlarm("slow", "ModelLatency", 2 * fast_us, min_invocations=5),),
    )
    stop = threading.Event()
    seen = _statuses(env, "bg-slow", stop)
    with Load(env, "bg-slow", body) as load:
        endpoints.deploy(
            "bg-slow", [VariantSpec("AllTraffic", slow.name)], update=True, deployment_config=config
        )
        done = endpoints.wait("bg-slow", timeout=60)
        time.sleep(0.5)
    stop.set()
    assert load.failures == []
    assert all(set(c) == {200} for c in load.by_variant().values())
    assert done["EndpointStatus"] == "InService"
    assert done["LastDeployment"]["Status"] == "RolledBack"
    assert "'slow' fired" in done["FailureReason"] and "ModelLatency" in done["FailureReason"]
    assert done["ProductionVariants"][0]["Model"] == env.job_a
    assert seen[-2:] == ["RollingBack", "InService"] and "Updating" in seen


def test_blue_green_from_the_cli(env: Served, capsys: pytest.CaptureFixture[str]) -> None:
    env.session.endpoints.deploy("bg-cli", [VariantSpec("AllTraffic", env.job_a)])
    code = main(
        [
            "deploy",
            env.job_b,
            "--endpoint",
            "bg-cli",
            "--update",
            "--traffic",
            "linear:50",
            "--bake",
            "0.3",
            "--alarm",
            "Invocation5XXErrors>1%",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 1/2" in out and "50%" in out and "InService" in out
    assert main(["endpoints", "describe", "bg-cli"]) == 0
    assert "Last update: Completed" in capsys.readouterr().out
    assert main(["deploy", env.job_a, "-e", "bg-cli", "--update", "--traffic", "fast"]) == 1
    assert "--traffic takes all, canary:PERCENT" in capsys.readouterr().err
    bad_config = ["deploy", env.job_a, "-e", "bg-cli", "--update", "--deployment-config", "{x"]
    assert main(bad_config) == 1
    assert "--deployment-config takes a JSON file or JSON text" in capsys.readouterr().err
    assert main(["deploy", "-e", "bg-cli-pipeline", "--pipeline", "[oops"]) == 1
    assert "--pipeline takes a JSON file or JSON text" in capsys.readouterr().err
    # Nothing changed: the endpoint serves what the last good update left.
    assert env.session.endpoints.describe("bg-cli")["ProductionVariants"][0]["Model"] == env.job_b


FLAKY = '''
import random

import numpy as np


def fail_one_in_ten(scores):
    """A postprocessor with a bug that shows on one request in ten."""
    if random.random() < 0.1:
        raise RuntimeError("the postprocessor failed")
    return np.asarray(scores)
'''


def test_a_model_failing_one_request_in_ten_is_rolled_back_and_the_old_one_answers(
    env: Served,
) -> None:
    """The new fleet: the module's second model followed by a postprocessor that fails
    10 % of the requests (an inference pipeline). Its 5xx error rate crosses the alarm's
    1 % during the canary's baking; the update rolls back while the old model answers."""
    endpoints = env.session.endpoints
    body = deploy_served(env, "bg-flaky", env.job_a)
    script = env.home.parent / "flaky.py"
    script.write_text(FLAKY)
    flaky = with_script(env.job_b, script, "fail_one_in_ten")
    config = DeploymentConfig(
        routing="CANARY",
        size=30,
        wait_seconds=60,
        alarms=(RollbackAlarm("errors", "Invocation5XXErrors", 0.01, min_invocations=20),),
    )
    stop = threading.Event()
    seen = _statuses(env, "bg-flaky", stop)
    with Load(env, "bg-flaky", body, clients=3) as load:
        endpoints.deploy("bg-flaky", [flaky], update=True, deployment_config=config)
        done = endpoints.wait("bg-flaky", timeout=120)
        rolled_back = time.monotonic()
        time.sleep(1.5)  # the old model answers everything again
    stop.set()
    assert load.failures == []
    counts = load.by_variant()
    green = counts.get("AllTraffic" + GREEN_SUFFIX, {})
    assert green.get(500, 0) > 0, counts  # the new fleet did fail some requests
    assert set(counts["AllTraffic"]) == {200}, counts  # the old model never did
    after = [s for t, s, _ in load.answers if t > rolled_back]
    assert after and set(after) == {200}
    assert done["EndpointStatus"] == "InService"
    assert done["LastDeployment"]["Status"] == "RolledBack"
    assert "Invocation5XXErrors" in done["FailureReason"]
    assert done["ProductionVariants"][0]["Model"] == env.job_a
    assert "Pipeline" not in done["ProductionVariants"][0]
    assert seen[-2:] == ["RollingBack", "InService"] and "Updating" in seen
