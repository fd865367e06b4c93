"""Autoscaling by target tracking on invocations per instance, under a generated load.

A real server whose pool follows the instance counts (at most 3 workers), a policy
with short windows, and a load from a few client threads on 127.0.0.1 for a bounded
time: the variant scales out while the load lasts and back in after it ends, and no
request fails on the way.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from _endpoint_env import Served, csv_line, served_env, wait_until

from sagelab.cli import main
from sagelab.errors import Conflict, InvalidInput, NotFound
from sagelab.serving import ScalingPolicy, VariantSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: Short windows and cooldowns (seconds) so that a test sees both directions.
QUICK = {
    "scale_out_cooldown": 2.0,
    "scale_in_cooldown": 3.0,
    "scale_out_window": 2.0,
    "scale_in_window": 4.0,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_env(
        tmp_path_factory.mktemp("autoscale"),
        workers=None,
        extra=("--metrics-period", "0.5", "--max-workers", "3"),
    )


def _workers(env: Served) -> int:
    """The server's live worker processes (the pool's size)."""
    port = env.url.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "serve" in cmdline and port in cmdline:
            workers = 0
            for child in proc.children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    alive = child.status() != psutil.STATUS_ZOMBIE
                    workers += alive and "spawn_main" in " ".join(child.cmdline())
            return workers
    return 0


def _instances(env: Served, endpoint: str) -> int:
    d = env.session.endpoints.describe(endpoint)
    return int(d["ProductionVariants"][0]["CurrentInstanceCount"])


def test_policies_are_checked_and_described(env: Served) -> None:
    endpoints = env.session.endpoints
    endpoints.deploy("scale-checks", [VariantSpec("AllTraffic", env.job_b)])
    scaling = endpoints.autoscaling
    with pytest.raises(InvalidInput) as caught:
        scaling.put_policy(
            "scale-checks",
            "AllTraffic",
            ScalingPolicy(min_capacity=0, max_capacity=-1, target_value=0, scale_in_window=0),
        )
    message = str(caught.value)
    for name in ("MinCapacity", "MaxCapacity", "TargetValue", "ScaleInWindow"):
        assert name in message
    with pytest.raises(NotFound, match=r"no variant 'AllTrafic'.*AllTraffic"):
        scaling.put_policy("scale-checks", "AllTrafic", ScalingPolicy(1, 2, 100.0))
    # A count outside the range is moved into it at once.
    described = scaling.put_policy("scale-checks", "AllTraffic", ScalingPolicy(2, 3, 100.0))
    assert described["Policies"]["AllTraffic"]["MinCapacity"] == 2
    assert _instances(env, "scale-checks") == 2
    assert described["Activities"][-1]["From"] == 1 and described["Activities"][-1]["To"] == 2
    shown = endpoints.describe("scale-checks")["AutoScaling"]["Policies"]["AllTraffic"]
    assert shown["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    scaling.delete_policy("scale-checks", "AllTraffic")
    with pytest.raises(NotFound, match="has no scaling policy"):
        scaling.delete_policy("scale-checks", "AllTraffic")
    endpoints.delete("scale-checks")
    with pytest.raises(NotFound):
        scaling.describe("scale-checks")


def test_a_variant_scales_out_under_load_and_in_after_it_without_failed_requests(
    env: Served,
) -> None:
    endpoints = env.session.endpoints
    endpoints.deploy("scaled", [VariantSpec("AllTraffic", env.job_a)])
    wait_until(
        lambda: env.invoke("scaled", csv_line(env.rows[0])).status_code == 200,
        what="the endpoint to be served",
    )
    # 120 invocations per instance per minute: 2 a second; the load below is far more.
    endpoints.autoscaling.put_policy("scaled", "AllTraffic", ScalingPolicy(1, 3, 120.0, **QUICK))
    body = csv_line(env.rows[1])
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=env.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.post(
                        "/endpoints/scaled/invocations",
                        content=body,
                        headers={"Content-Type": "text/csv"},
                    )
                    statuses.append(r.status_code)
                except httpx.TransportError as exc:
                    failures.append(repr(exc))
                time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    peak_instances = peak_workers = 1
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            peak_instances = max(peak_instances, _instances(env, "scaled"))
            peak_workers = max(peak_workers, _workers(env))
            if peak_instances >= 3 and peak_workers >= 3:
                break
            time.sleep(0.25)
        time.sleep(2)  # serve a moment on the grown pool
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert peak_instances >= 2, "the variant did not scale out under load"
    assert peak_workers >= 2, "the server's pool did not follow the instance count"
    wait_until(lambda: _instances(env, "scaled") == 1, timeout=60, what="the scale-in")
    wait_until(lambda: _workers(env) == 1, timeout=60, what="the pool to shrink")
    assert failures == [] and statuses and set(statuses) == {200}
    activities = endpoints.autoscaling.describe("scaled")["Activities"]
    ups = [a for a in activities if a["To"] > a["From"]]
    downs = [a for a in activities if a["To"] < a["From"]]
    assert ups and "above the target" in ups[0]["Cause"]
    assert downs and "below 90% of the target" in downs[-1]["Cause"]
    assert downs[-1]["To"] == 1
    # Requests after the scale-in are served by the remaining worker.
    assert env.invoke("scaled", body).status_code == 200


def test_scaling_waits_while_an_endpoint_is_busy(env: Served) -> None:
    endpoints = env.session.endpoints
    endpoints.deploy("scale-busy", [VariantSpec("AllTraffic", env.job_b)])
    scaling = endpoints.autoscaling
    with endpoints.store.session() as s:
        from sagelab.store import Endpoint

        row = s.get(Endpoint, "scale-busy")
        assert row is not None
        row.status = "Updating"
    with pytest.raises(Conflict, match="Updating"):
        scaling.put_policy("scale-busy", "AllTraffic", ScalingPolicy(1, 2, 100.0))
    assert scaling.scale("scale-busy", "AllTraffic", 2, "test") is False
    assert _instances(env, "scale-busy") == 1


def test_autoscale_cli(env: Served, capsys: pytest.CaptureFixture[str]) -> None:
    env.session.endpoints.deploy("scale-cli", [VariantSpec("AllTraffic", env.job_b)])
    args = ["endpoints", "autoscale", "scale-cli", "--variant", "AllTraffic"]
    assert main([*args, "--min", "1", "--max", "2", "--target", "300", "--json"]) == 0
    policy = json.loads(capsys.readouterr().out)["Policies"]["AllTraffic"]
    assert (policy["MinCapacity"], policy["MaxCapacity"], policy["TargetValue"]) == (1, 2, 300.0)
    assert main([*args, "--min", "1"]) == 1
    assert "--max, --target" in capsys.readouterr().err
    assert main([*args, "--min", "3", "--max", "2", "--target", "300"]) == 1
    assert "MaxCapacity (2) must be at least MinCapacity (3)" in capsys.readouterr().err
    assert main([*args, "--off", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["Policies"] == {}
    env.session.endpoints.delete("scale-cli")
