"""Bounded soaks on 127.0.0.1: steady load for minutes while endpoints change under it.

One soak keeps changing two variants' weights; the other scales a variant out, runs
a canary rollout that completes and one that an alarm rolls back. Every request must
be answered, and answered 200.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from _endpoint_env import Load, Served, csv_line, deploy_served, served_env, wait_until, with_script

from sagelab.serving import (
    GREEN_SUFFIX,
    DeploymentConfig,
    RollbackAlarm,
    ScalingPolicy,
    VariantSpec,
)

#: Seconds of load; several minutes by default, shorter when a developer asks for it.
SOAK_SECONDS = float(os.environ.get("SAGELAB_SOAK_SECONDS", "180"))
CLIENTS = 4


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_env(
        tmp_path_factory.mktemp("soak"),
        workers=None,
        extra=("--metrics-period", "1", "--max-workers", "3"),
    )


def test_soak_weight_updates_under_load_lose_no_request(soaked: Served) -> None:
    endpoints = soaked.session.endpoints
    endpoints.deploy(
        "soak",
        [VariantSpec("blue", soaked.job_a, weight=1), VariantSpec("green", soaked.job_b, weight=1)],
    )
    url = f"{soaked.url}/endpoints/soak/invocations"
    body = csv_line(soaked.rows[0])
    statuses: Counter[int] = Counter()
    variants: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SOAK_SECONDS

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < deadline:
                try:
                    r = http.post(url, content=body, headers={"Content-Type": "text/csv"})
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    statuses[r.status_code] += 1
                    variants[r.headers.get("x-amzn-invoked-production-variant", "")] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    updates = 0
    try:
        while time.monotonic() < deadline:
            blue = (updates % 5) / 4  # 0, .25, .5, .75, 1 and round again
            endpoints.update_weights("soak", {"blue": blue, "green": 1 - blue + 0.01})
            updates += 1
            time.sleep(1.0)
    finally:
        for t in threads:
            t.join(SOAK_SECONDS + 60)
    total = sum(statuses.values())
    assert not failures, failures[:5]
    assert statuses == Counter({200: total}), statuses
    assert total > SOAK_SECONDS  # the load was steady: more than one request a second
    assert set(variants) == {"blue", "green"}
    assert updates >= SOAK_SECONDS // 2


SLOW = """
import time

import numpy as np


def slow_down(scores):
    time.sleep(0.02)  # a postprocessor that adds 20 ms to every answer
    return np.asarray(scores)
"""


def test_soak_canary_rollout_rollback_and_scale_out_under_load(soaked: Served) -> None:
    endpoints = soaked.session.endpoints
    body = deploy_served(soaked, "soak-bg", soaked.job_a)
    script = soaked.home.parent / "slow.py"
    script.write_text(SLOW)
    guard = (
        RollbackAlarm("errors", "Invocation5XXErrors", 0.01),
        RollbackAlarm("latency", "ModelLatency", 10_000.0),  # 10 ms
    )
    canary = DeploymentConfig(
        routing="CANARY", size=25, wait_seconds=15, termination_wait_seconds=5, alarms=guard
    )
    deadline = time.monotonic() + SOAK_SECONDS
    outcomes = []
    peak = 1
    with Load(soaked, "soak-bg", body, clients=CLIENTS, pause=0.0) as load:
        # A scale-out: the load is far above 60 invocations per instance per minute.
        endpoints.autoscaling.put_policy(
            "soak-bg",
            "AllTraffic",
            ScalingPolicy(
                1, 2, 60.0, scale_out_cooldown=2, scale_out_window=2, disable_scale_in=True
            ),
        )

        def instances() -> int:
            d = endpoints.describe("soak-bg")
            return int(d["ProductionVariants"][0]["CurrentInstanceCount"])

        wait_until(lambda: instances() == 2, timeout=60, what="the scale-out")
        peak = instances()
        # A canary rollout of a good model: completes.
        endpoints.deploy(
            "soak-bg",
            [VariantSpec("AllTraffic", soaked.job_b, instance_count=2)],
            update=True,
            deployment_config=canary,
        )
        outcomes.append(endpoints.wait("soak-bg", timeout=120)["LastDeployment"])
        # A canary rollout of a slow model (20 ms per answer): the latency alarm rolls it back.
        slow = with_script(soaked.job_a, script, "slow_down", instances=2)
        endpoints.deploy("soak-bg", [slow], update=True, deployment_config=canary)
        outcomes.append(endpoints.wait("soak-bg", timeout=120)["LastDeployment"])
        while time.monotonic() < deadline:  # steady load for the rest of the soak
            time.sleep(1.0)
    assert load.failures == [], load.failures[:5]
    counts = load.by_variant()
    assert set(counts) == {"AllTraffic", "AllTraffic" + GREEN_SUFFIX}, counts
    assert all(set(c) == {200} for c in counts.values()), counts
    assert sum(sum(c.values()) for c in counts.values()) > SOAK_SECONDS
    assert peak == 2
    assert [o["Status"] for o in outcomes] == ["Completed", "RolledBack"]
    assert "ModelLatency" in outcomes[1]["Reason"]
    final = endpoints.describe("soak-bg")
    assert final["EndpointStatus"] == "InService"
    assert final["ProductionVariants"][0]["Model"] == soaked.job_b
