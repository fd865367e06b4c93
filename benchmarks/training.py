"""Benchmark: ``sagelab train`` against direct ``xgboost.train``, and linear-learner's peak memory.

Usage::

    python benchmarks/training.py [--rows N] [--big-rows M] [--runs 3] [--threads T]
                                  [--rounds 100] [--epochs 3] [--json OUT]

Inputs, made in a temporary folder (which is also the ``SAGELAB_HOME`` of the
whole run, so nothing touches the user's installation, and which is deleted at
the end):

* ``train-N.parquet``: N (default 1,000,000) rows × 50 float32 features
  ``f0..f49`` and a binary ``label`` drawn from a known logistic model with
  noise, written in row groups of 100,000 rows, each generated from its own
  fixed seed (so the first N rows of a bigger file are the same rows, and no
  more than one row group is ever in memory);
* ``validation-N.parquet``: N / 10 more rows of the same model;
* ``train-M.parquet`` and ``validation-M.parquet``: the same for M (default
  5,000,000) rows, for linear-learner.

It measures, in one run:

1. **xgboost** (``num_round=100, max_depth=6, eta=0.3, binary:logistic, auc,
   hist``, seed 0, ``--threads`` on both sides): the path of ``sagelab train``
   (``sagelab.Estimator("xgboost", ...).fit({"train": ..., "validation": ...})``
   with its defaults: the job's process starts, reads and checks the Parquet
   files through DuckDB, trains with a checkpoint every 10 rounds and every
   metric logged, evaluates, saves the model to the lake) from ``fit`` to
   Completed, against the direct path in this (already warm) process: PyArrow
   ``read_table`` → NumPy → ``xgboost.DMatrix`` → ``xgboost.train(params,
   dtrain, num_round, evals=[(dval, "validation")])`` → ``save_model``. Medians
   of ``--runs`` interleaved runs, in wall time and CPU time (all threads and
   processes: it feels other load on the machine less); sagelab's time split by
   the job's own timings (``result["Timings"]``) and its launch time, the
   difference split into start-up, reading, training (with the train metrics,
   checkpoints and metric records sagelab adds) and evaluation and upload; both
   validation AUCs, which should be equal.
2. **linear-learner peak memory** on N and M rows (binary classifier, mini-batch
   1000, ``--epochs`` epochs): the high-water mark of the job's worker process
   (``VmHWM`` from ``/proc/<pid>/status``, polled every 50 ms while the job
   runs; the kernel keeps the maximum, so a spike between two polls is not
   missed, only the last ≤ 50 ms before the worker exits are; without
   ``/proc``, sampled RSS), the job's phase when it was reached, the highest
   RSS sampled in each phase, and the ratio of the two peaks.

It prints the figures and ratios, and writes JSON with the date, the machine
(and its 1-minute load before and after) and the versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import duckdb
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost

import sagelab
from sagelab.config import get_settings
from sagelab.jobs import StatusTransition
from sagelab.session import Session

FEATURES = 50
#: Rows per generated row group (and per seed); bounds the generator's memory.
CHUNK_ROWS = 100_000
SEED = 20_240_601
TARGETS = {"xgboost_wall_ratio": 1.10, "linear_peak_ratio": 1.3}


# ---------------------------------------------------------------------- data
def _weights() -> tuple[np.ndarray, float]:
    """The known logistic model: weights of varying size, a few of them zero."""
    rng = np.random.default_rng(SEED)
    w = rng.normal(0.0, 1.0, FEATURES) * rng.choice([0.0, 0.3, 1.0], FEATURES, p=[0.2, 0.4, 0.4])
    return w / np.sqrt(np.sum(w * w)) * 2.0, -0.5


def make_data(path: Path, rows: int, part: int) -> None:
    """``rows`` rows of the logistic model as Parquet, one seeded chunk per row group.

    ``part`` separates the streams of the train (0) and validation (1) files.
    """
    w, b = _weights()
    names = [f"f{i}" for i in range(FEATURES)]
    schema = pa.schema([*(pa.field(n, pa.float32()) for n in names), pa.field("label", pa.int32())])
    # Random floats do not repeat: dictionary pages would only bloat the file.
    with pq.ParquetWriter(path, schema, use_dictionary=False) as writer:
        for chunk, start in enumerate(range(0, rows, CHUNK_ROWS)):
            n = min(CHUNK_ROWS, rows - start)
            rng = np.random.default_rng([SEED, part, chunk])
            X = rng.standard_normal((n, FEATURES), dtype=np.float32)
            logit = X.astype(np.float64) @ w + b + rng.normal(0.0, 0.5, n)
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
            columns = [pa.array(X[:, i]) for i in range(FEATURES)] + [pa.array(y)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def make_pair(work: Path, rows: int) -> tuple[Path, Path]:
    train, validation = work / f"train-{rows}.parquet", work / f"validation-{rows}.parquet"
    make_data(train, rows, part=0)
    make_data(validation, max(rows // 10, 1), part=1)
    return train, validation


# ---------------------------------------------------------------------- job processes
def _status_kib(pid: int) -> dict[str, int] | None:
    """``VmHWM`` and ``VmRSS`` of a process in KiB (Linux), or None when unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out if len(out) == 2 else None


class JobMonitor:
    """Polls a job's process tree: each process's memory over time and its CPU time.

    The job's recorded pid is its supervisor; the worker that trains is the
    supervisor's child. ``VmHWM`` is the kernel's own maximum of a process's
    resident set, so polling it misses no spike, only what happens after the last
    poll; where ``/proc`` is missing the sampled RSS stands in for it. CPU time
    (user + system, all threads) is the last value read, so it too misses at most
    one interval.

    Args:
        pid: the job's recorded pid.
        interval: seconds between polls.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        #: per process: (time, RSS bytes, high-water mark bytes) at each poll
        self.samples: dict[int, list[tuple[datetime, int, int]]] = {}
        self.cpu: dict[int, float] = {}  # seconds, per process
        self.tree_rss_peak = 0
        self.source = "VmHWM" if _status_kib(os.getpid()) is not None else "sampled RSS"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            now, total = datetime.now(UTC), 0
            for proc in procs:
                status = _status_kib(proc.pid)
                if status is not None:
                    rss, hwm = status["VmRSS"] * 1024, status["VmHWM"] * 1024
                else:
                    try:
                        rss = hwm = proc.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    seen = self.samples.get(proc.pid)
                    hwm = max(hwm, seen[-1][2]) if seen else hwm
                self.samples.setdefault(proc.pid, []).append((now, rss, hwm))
                try:
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    pass
                total += rss
            self.tree_rss_peak = max(self.tree_rss_peak, total)
            self._done.wait(self.interval)

    def peak(self, pid: int) -> int:
        return max(h for _, _, h in self.samples.get(pid, [(datetime.now(UTC), 0, 0)]))

    def worker(self) -> int | None:
        """The worker's pid: the first process below the supervisor that was seen."""
        others = [p for p in self.samples if p != self.pid]
        return others[0] if others else None


# ---------------------------------------------------------------------- xgboost
def xgboost_hyperparameters(rounds: int, threads: int) -> dict[str, Any]:
    """SageMaker's names, as ``sagelab train --hp`` takes them."""
    return {
        "num_round": rounds,
        "max_depth": 6,
        "eta": 0.3,
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "nthread": threads,
    }


def direct_xgboost(train: Path, validation: Path, hp: dict[str, Any], out: Path) -> dict[str, Any]:
    """What a user writes without sagelab: PyArrow → NumPy → DMatrix → xgboost.train → file."""
    params = {
        "objective": hp["objective"],
        "eval_metric": [hp["eval_metric"]],
        "max_depth": hp["max_depth"],
        "eta": hp["eta"],
        "tree_method": hp["tree_method"],
        "nthread": hp["nthread"],
        "seed": 0,  # sagelab's job seed
    }
    seconds: dict[str, float] = {}
    start, cpu_start = time.perf_counter(), time.process_time()

    def arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
        table = pq.read_table(path)
        features = [n for n in table.column_names if n != "label"]
        X = np.column_stack([table.column(n).to_numpy() for n in features])
        return X, table.column("label").to_numpy()

    X, y = arrays(train)
    Xv, yv = arrays(validation)
    seconds["read"] = time.perf_counter() - start
    t = time.perf_counter()
    dtrain = xgboost.DMatrix(X, label=y, nthread=hp["nthread"])
    dval = xgboost.DMatrix(Xv, label=yv, nthread=hp["nthread"])
    seconds["dmatrix"] = time.perf_counter() - t
    t = time.perf_counter()
    history: dict[str, Any] = {}
    booster = xgboost.train(
        params,
        dtrain,
        hp["num_round"],
        evals=[(dval, "validation")],
        evals_result=history,
        verbose_eval=False,
    )
    seconds["train"] = time.perf_counter() - t
    t = time.perf_counter()
    booster.save_model(str(out))
    seconds["save"] = time.perf_counter() - t
    seconds["wall"] = time.perf_counter() - start
    seconds["cpu"] = time.process_time() - cpu_start
    return {"seconds": seconds, "auc": float(history["validation"]["auc"][-1])}


def sagelab_xgboost(
    session: Session, train: Path, validation: Path, hp: dict[str, Any], name: str
) -> dict[str, Any]:
    """``sagelab train``'s path through the SDK's Estimator, from fit() to Completed.

    ``fit(wait=False)`` and then ``wait()`` is ``fit()``, with a moment between
    the two to start following the job's processes.
    """
    start = time.perf_counter()
    est = sagelab.Estimator("xgboost", hyperparameters=hp, target="label", session=session)
    est.fit({"train": str(train), "validation": str(validation)}, wait=False, job_name=name)
    job = est.latest_training_job
    if job is None or job.info().pid is None:
        raise SystemExit(f"The job {name} did not start.")
    # Every 0.5 s, not 50 ms: walking the process table takes CPU from XGBoost's two
    # threads, and a round waits for its slowest thread. The CPU time read at the last
    # poll misses at most the job's last 0.5 s.
    with JobMonitor(job.info().pid or 0, interval=0.5) as monitor:
        info = job.wait()
    wall = time.perf_counter() - start
    timings = info.result["Timings"]
    launch = (info.start_time - info.creation_time).total_seconds()  # type: ignore[operator]
    worker = monitor.worker()
    return {
        "job": name,
        "seconds": {
            "wall": wall,
            # submit → the job's process marked started (process start, interpreter, imports)
            "launch": launch,
            "read": timings["ReadSeconds"],
            "train": timings["TrainSeconds"],
            "evaluate": timings["EvaluateSeconds"],
            "upload": timings["UploadSeconds"],
            # fork, the worker's imports, recording the result, the 0.2 s poll of wait()
            "other": wall - launch - timings["TotalSeconds"],
            "cpu": sum(monitor.cpu.values()),
        },
        "auc": float(info.result["FinalMetrics"]["validation:auc"]),
        "checkpoints_saved": (info.result.get("Checkpoint") or {}).get("Saved"),
        "worker_peak_bytes": monitor.peak(worker) if worker is not None else None,
    }


def bench_xgboost(
    session: Session,
    train: Path,
    validation: Path,
    work: Path,
    rounds: int,
    threads: int,
    runs: int,
) -> dict[str, Any]:
    hp = xgboost_hyperparameters(rounds, threads)
    warm_up = warm_job_server(session, validation)
    samples: dict[str, list[dict[str, Any]]] = {"direct": [], "sagelab": []}
    for i in range(runs):
        # Interleaved, alternating which goes first, so a busy moment hits both alike.
        for side in ("direct", "sagelab") if i % 2 == 0 else ("sagelab", "direct"):
            if side == "direct":
                run = direct_xgboost(train, validation, hp, work / "direct-model.ubj")
            else:
                run = sagelab_xgboost(session, train, validation, hp, f"bench-xgboost-{i}")
            samples[side].append(run)
            print(f"  xgboost run {i + 1}/{runs} {side:8s} {run['seconds']['wall']:7.2f} s")

    def median_run(runs_: list[dict[str, Any]]) -> dict[str, float]:
        """The seconds of the run with the median wall time (the lower of an even count),
        whole, so that its parts add up."""
        wall = statistics.median_low(r["seconds"]["wall"] for r in runs_)
        return next(r["seconds"] for r in runs_ if r["seconds"]["wall"] == wall)

    direct, ours = median_run(samples["direct"]), median_run(samples["sagelab"])
    cpu = {
        side: statistics.median(r["seconds"]["cpu"] for r in runs_)
        for side, runs_ in samples.items()
    }
    # Where sagelab's extra time goes; the parts add up to the difference of the walls.
    # Training includes the train metrics, checkpoints and metric records sagelab adds.
    overhead = {
        "start_up": ours["launch"] + ours["other"],
        "reading": ours["read"] - direct["read"],
        "training": ours["train"] - direct["dmatrix"] - direct["train"],
        "evaluate_upload": ours["evaluate"] + ours["upload"] - direct["save"],
    }
    return {
        "rows": pq.ParquetFile(train).metadata.num_rows,
        "validation_rows": pq.ParquetFile(validation).metadata.num_rows,
        "features": FEATURES,
        "hyperparameters": hp,
        "runs": runs,
        "seconds": {"direct": direct, "sagelab": ours},
        "wall_ratio": ours["wall"] / direct["wall"],
        # CPU seconds (all threads and processes) feel other load on the machine less.
        "cpu_seconds": cpu,
        "cpu_ratio": cpu["sagelab"] / cpu["direct"],
        "overhead_seconds": overhead,
        "direct_auc": samples["direct"][0]["auc"],
        "sagelab_auc": samples["sagelab"][0]["auc"],
        "checkpoints_saved": samples["sagelab"][0]["checkpoints_saved"],
        "sagelab_worker_peak_bytes": max(r["worker_peak_bytes"] or 0 for r in samples["sagelab"]),
        "samples": samples,
        "fork_server_warm_up_seconds": warm_up,
    }


def warm_job_server(session: Session, validation: Path) -> float | None:
    """Have sagelab's job fork server ready, as it is for every job after the first.

    The direct side runs in this process, with XGBoost already imported; a sagelab
    job forks from a server that has imported it too, once. The first job after the
    server has idled out starts a fresh interpreter instead while the server starts
    in the background: this tiny job does that, and the time until the server is
    ready is reported beside the runs (None: the fork server is turned off).
    """
    from sagelab.jobs._forkserver import ForkServerClient

    if not session.settings.job_fork_server:
        return None
    client = ForkServerClient(session.settings.job_fork_server_idle_seconds)
    start = time.perf_counter()
    est = sagelab.Estimator(
        "xgboost", hyperparameters={"num_round": 2}, target="label", session=session
    )
    est.fit({"train": str(validation)}, job_name="bench-xgboost-warm-up")
    if not client.wait_ready(os.environ, timeout=300):
        raise SystemExit("The job fork server did not become ready within 300 s.")
    seconds = time.perf_counter() - start
    print(f"  job fork server ready after {seconds:.1f} s (a first job included)")
    return seconds


# ---------------------------------------------------------------------- linear-learner
def memory_by_phase(
    samples: list[tuple[datetime, int, int]], transitions: tuple[StatusTransition, ...]
) -> tuple[dict[str, int], str]:
    """The highest sampled RSS in each of the job's secondary statuses, and the status
    during which the high-water mark reached its final value.

    The statuses: ``Running`` (the worker imports), ``Downloading`` (reading and
    checking the channels), ``Training``, ``Uploading`` (saving the model).
    """
    starts = sorted((t.start_time, t.status) for t in transitions)

    def phase(at: datetime) -> str:
        current = "Running"
        for when, status in starts:
            if when <= at:
                current = status
        return current

    peaks: dict[str, int] = {}
    for at, rss, _ in samples:
        if rss == 0:  # the worker has exited (a zombie until its supervisor reaps it)
            continue
        key = phase(at)
        peaks[key] = max(peaks.get(key, 0), rss)
    final = samples[-1][2]
    reached = next(at for at, _, hwm in samples if hwm >= final)
    return peaks, phase(reached)


def linear_hyperparameters(epochs: int) -> dict[str, Any]:
    return {"predictor_type": "binary_classifier", "epochs": epochs, "mini_batch_size": 1000}


def sagelab_linear(
    session: Session, train: Path, validation: Path, epochs: int, name: str
) -> dict[str, Any]:
    """Train linear-learner as a job and follow its process tree's memory until it ends."""
    start = time.perf_counter()
    info = session.training.submit(
        "linear-learner",
        {"train": str(train), "validation": str(validation)},
        hyperparameters=linear_hyperparameters(epochs),
        target="label",
        name=name,
    )
    if info.pid is None:
        raise SystemExit(f"The job {name} has no process: {info.failure_reason}")
    with JobMonitor(info.pid) as memory:
        info = session.jobs.wait(name, poll=0.05)
    wall = time.perf_counter() - start
    if info.status != "Completed":
        raise SystemExit(f"The job {name} ended {info.status}: {info.failure_reason}")
    worker = memory.worker()
    if worker is None:
        raise SystemExit(f"The job {name} ended before its worker process was seen.")
    phases, peak_phase = memory_by_phase(memory.samples[worker], info.transitions)
    timings = info.result["Timings"]
    return {
        "job": name,
        "rows": pq.ParquetFile(train).metadata.num_rows,
        "validation_rows": pq.ParquetFile(validation).metadata.num_rows,
        "wall_seconds": wall,
        "read_seconds": timings["ReadSeconds"],
        "train_seconds": timings["TrainSeconds"],
        "memory_source": memory.source,
        "worker_peak_bytes": memory.peak(worker),
        "worker_peak_phase": peak_phase,
        # the highest sampled RSS per secondary status (see memory_by_phase)
        "worker_rss_by_phase_bytes": phases,
        "supervisor_peak_bytes": memory.peak(info.pid or 0),
        "tree_rss_peak_bytes": memory.tree_rss_peak,
        "roc_auc": float(info.result["FinalMetrics"]["validation:roc_auc_score"]),
    }


def bench_linear(
    session: Session, small: tuple[Path, Path], big: tuple[Path, Path], epochs: int
) -> dict[str, Any]:
    runs = []
    for label, (train, validation) in (("small", small), ("big", big)):
        run = sagelab_linear(session, train, validation, epochs, f"bench-linear-{label}")
        runs.append(run)
        print(
            f"  linear-learner {run['rows']:>10,} rows  peak {run['worker_peak_bytes'] / 2**20:7.1f}"
            f" MiB  {run['wall_seconds']:6.1f} s"
        )
    return {
        "hyperparameters": linear_hyperparameters(epochs),
        "runs": runs,
        "peak_ratio": runs[1]["worker_peak_bytes"] / runs[0]["worker_peak_bytes"],
        "rows_ratio": runs[1]["rows"] / runs[0]["rows"],
    }


# ---------------------------------------------------------------------- main
def _isolated_home(home: Path) -> dict[str, str | None]:
    """Point sagelab at ``home`` for this process and its jobs; return what it replaced."""
    keys = ("SAGELAB_HOME", "SAGELAB_DB_URL", "SAGELAB_LAKE", "SAGELAB_CONFIG")
    saved = {k: os.environ.get(k) for k in keys}
    for key in keys:
        os.environ.pop(key, None)
    os.environ["SAGELAB_HOME"] = str(home)
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _stop_jobs(session: Session) -> None:
    """Stop the jobs an interrupted run leaves running, and let them end before their
    files are deleted."""
    for info in session.jobs.list():
        if info.is_terminal:
            continue
        with contextlib.suppress(Exception):  # it may have ended meanwhile
            session.jobs.stop(info.name)
            session.jobs.wait(info.name, timeout=60)


def _source_version() -> str | None:
    """The checkout's commit, ``-dirty`` with uncommitted changes (None outside git)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def print_report(report: dict[str, Any]) -> None:
    xgb, linear, targets = report["xgboost"], report["linear_learner"], report["targets"]
    hp, c = xgb["hyperparameters"], xgb["cpu_seconds"]
    d, s = xgb["seconds"]["direct"], xgb["seconds"]["sagelab"]
    print(
        f"\nxgboost, {xgb['rows']:,} × {xgb['features']} (+{xgb['validation_rows']:,} validation),"
        f" {hp['num_round']} rounds, {hp['nthread']} threads; the median of {xgb['runs']} "
        "interleaved runs per side"
    )
    print(f"{'':8s} {'wall':>8s} {'CPU':>8s}   split of the median run (seconds)")
    print(
        f"{'direct':8s} {d['wall']:7.2f}s {c['direct']:7.1f}s   read {d['read']:.2f}  DMatrix "
        f"{d['dmatrix']:.2f}  train {d['train']:.2f}  save {d['save']:.2f}"
    )
    print(
        f"{'sagelab':8s} {s['wall']:7.2f}s {c['sagelab']:7.1f}s   launch {s['launch']:.2f}  "
        f"read {s['read']:.2f}  train {s['train']:.2f}  evaluate {s['evaluate']:.2f}  "
        f"upload {s['upload']:.2f}  other {s['other']:.2f}"
    )
    verdict = "met" if xgb["wall_ratio"] <= targets["xgboost_wall_ratio"] else "MISSED"
    print(
        f"sagelab ÷ direct: wall {xgb['wall_ratio']:.2f}x "
        f"(target ≤ {targets['xgboost_wall_ratio']:.2f}x: {verdict}), CPU {xgb['cpu_ratio']:.2f}x"
    )
    o = xgb["overhead_seconds"]
    print(
        f"sagelab's extra {s['wall'] - d['wall']:.2f} s: start-up {o['start_up']:.2f}, reading "
        f"{o['reading']:+.2f}, training {o['training']:+.2f}, evaluate and upload "
        f"{o['evaluate_upload']:+.2f}"
    )
    print(
        f"validation AUC: direct {xgb['direct_auc']:.6f}, sagelab {xgb['sagelab_auc']:.6f} "
        f"(difference {abs(xgb['direct_auc'] - xgb['sagelab_auc']):.2g})"
    )

    lhp = linear["hyperparameters"]
    print(
        f"\nlinear-learner, {lhp['epochs']} epochs, mini-batch {lhp['mini_batch_size']}: "
        f"the job's worker process ({linear['runs'][0]['memory_source']})"
    )
    phases = ("Running", "Downloading", "Training", "Uploading")
    print(
        f"{'rows':>10s} {'peak':>9s} {'reached in':>12s} | highest RSS sampled in "
        + " ".join(f"{p:>11s}" for p in phases)
        + f" | {'wall':>7s}  AUC"
    )
    for r in linear["runs"]:
        by = r["worker_rss_by_phase_bytes"]
        sampled = " ".join(f"{_mib(by[p]) if p in by else '-':>11s}" for p in phases)
        print(
            f"{r['rows']:>10,} {_mib(r['worker_peak_bytes']):>9s} {r['worker_peak_phase']:>12s} | "
            f"{'':22s} {sampled} | {r['wall_seconds']:>6.1f}s  {r['roc_auc']:.4f}"
        )
    verdict = "met" if linear["peak_ratio"] <= targets["linear_peak_ratio"] else "MISSED"
    print(
        f"peak ratio at {linear['rows_ratio']:.0f}x the rows: {linear['peak_ratio']:.2f}x "
        f"(target ≤ {targets['linear_peak_ratio']}: {verdict})"
    )
    machine = report["machine"]
    print(
        f"\ndata generated in {report['generate_seconds']:.1f} s; 1-minute load "
        f"{machine['load_before']} before, {machine['load_after']} after"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="train rows (xgboost, small)")
    parser.add_argument("--big-rows", type=int, default=5_000_000, help="linear-learner big train")
    parser.add_argument("--runs", type=int, default=3, help="xgboost runs per side (median)")
    parser.add_argument("--rounds", type=int, default=100, help="xgboost num_round")
    parser.add_argument("--epochs", type=int, default=3, help="linear-learner epochs")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="xgboost nthread, both sides"
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    # A SIGTERM unwinds like Ctrl-C, so the jobs are stopped and the files deleted.
    signal.signal(signal.SIGTERM, _terminate)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sagelab-bench-") as tmp:
        work = Path(tmp)
        saved = _isolated_home(work / "home")
        session = Session(get_settings())
        try:
            t = time.perf_counter()
            small = make_pair(work, args.rows)
            big = make_pair(work, args.big_rows)
            generate_seconds = time.perf_counter() - t
            print(f"generated {args.rows:,} + {args.big_rows:,} rows in {generate_seconds:.1f} s")
            xgb = bench_xgboost(session, *small, work, args.rounds, args.threads, args.runs)
            linear = bench_linear(session, small, big, args.epochs)
        finally:
            _stop_jobs(session)
            session.jobs.close()
            session.store.dispose()
            _restore(saved)

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            # Other work on the machine skews every figure: the 1-minute load, before and after.
            "load_before": round(load_before[0], 2),
            "load_after": round(os.getloadavg()[0], 2),
        },
        "versions": {
            "sagelab": sagelab.__version__,
            # Figures hold for the code as it was: the commit, and -dirty with local edits.
            "source": _source_version(),
            "xgboost": xgboost.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "duckdb": duckdb.__version__,
        },
        "targets": TARGETS,
        "generate_seconds": generate_seconds,
        "xgboost": xgb,
        "linear_learner": linear,
    }

    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
