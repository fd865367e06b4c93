"""Benchmark: a sagelab endpoint against a minimal uvicorn app and ``mlflow models serve``.

Usage::

    python benchmarks/serving.py [--workers 2] [--duration 10] [--concurrency 1 8 64]
                                 [--rounds 3] [--mlflow-python PATH] [--transform-rows N]
                                 [--capture] [--shadow] [--json OUT]

One XGBoost model (100 rounds, depth 6, trained on 20,000 generated rows × 20
features) is served three ways at the same worker count, all running at once and
taking turns (``--rounds`` rounds, medians reported), each loaded with ``wrk``
(Debian's package) for ``--duration`` seconds at each concurrency, with
single-row CSV requests:

1. **sagelab**: ``sagelab serve --workers W`` with the model deployed to an endpoint
   (the whole path: variant choice, parsing and checks, metrics, response header);
2. **minimal**: a hand-written ASGI app under ``uvicorn --workers W`` that loads the
   same model file, parses the row with NumPy and calls ``inplace_predict`` (one
   thread per worker, as sagelab does);
3. **mlflow**: ``mlflow models serve --env-manager local --workers W`` on the same
   booster saved with ``mlflow.xgboost`` (from its own virtualenv, ``--mlflow-python``,
   since MLflow pins its own versions; skipped when not given or not found).
4. **sagelab+capture** (with ``--capture``): a second endpoint of the same server and
   model that captures every request and answer to the lake (``--data-capture 100``);
   the report gives its requests per second against the plain endpoint's, and checks
   after the server's clean stop that every answered request was captured or counted
   as dropped.
5. **sagelab+shadow** (with ``--shadow``): a third endpoint of the same server whose
   shadow variant (the same model) gets a copy of every request; the report gives its
   requests per second and latencies against the plain endpoint's, and how many copies
   the shadows answered or dropped.

It reports requests per second, p50 and p99 latency (wrk's ``--latency``), the
ratios against the minimal app, and, when ``benchmarks/transform.py`` is there,
batch transform's rows per second against the model's raw ``predict``. Everything
listens on 127.0.0.1 and stops at the end; the temporary home is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

FEATURES = 20
MINIMAL_APP = """
import os
import numpy as np
import xgboost

booster = xgboost.Booster(model_file=os.environ["BENCH_MODEL"])
booster.set_param({"nthread": 1})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":  # health check
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    row = np.array(body.decode().split(","), dtype=np.float64).reshape(1, -1)
    score = booster.inplace_predict(row)
    out = (repr(float(score[0])) + "\\n").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/csv"),
                            (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "{content_type}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"nothing answered at {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run_wrk(
    url: str, body: str, content_type: str, concurrency: int, duration: int, folder: Path
) -> dict[str, float]:
    script = folder / f"post-{abs(hash((body, content_type)))}.lua"
    script.write_text(WRK_SCRIPT.format(body=body, content_type=content_type))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(concurrency, 2)),
            "-c",
            str(concurrency),
            "-d",
            f"{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if m is None:
            return float("nan")
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
        return float(m.group(1)) * scale

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",  # type: ignore[dict-item]
    }


def capture_counts(metrics_url: str) -> dict[str, Any]:
    """The capture endpoint's answered invocations and dropped capture records, summed over
    its variants, from the server's Prometheus metrics."""
    text = httpx.get(metrics_url, timeout=30).text

    def total(metric: str) -> float:
        pattern = rf'^{metric}\{{endpoint="bench-capture",[^}}]*\}} (\S+)$'
        return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))

    errors = total("sagelab_endpoint_invocation_4xx_errors_total") + total(
        "sagelab_endpoint_invocation_5xx_errors_total"
    )
    return {
        "invocations": total("sagelab_endpoint_invocations_total") - errors,
        "dropped": total("sagelab_endpoint_capture_dropped_records_total"),
    }


def shadow_counts(metrics_url: str) -> dict[str, float]:
    """The shadow endpoint's answered invocations, its shadow's answers and dropped copies."""
    text = httpx.get(metrics_url, timeout=10).text

    def total(metric: str, variant: str) -> float:
        pattern = rf'^{metric}\{{endpoint="bench-shadow",variant="{variant}"\}} (\S+)$'
        return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.M))

    return {
        "invocations": total("sagelab_endpoint_invocations_total", "AllTraffic"),
        "shadow_answered": total("sagelab_endpoint_invocations_total", "Shadow"),
        "shadow_dropped": total("sagelab_endpoint_shadow_dropped_requests_total", "Shadow"),
    }


def train_model(folder: Path) -> tuple[Path, np.ndarray]:
    import xgboost

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, FEATURES))
    y = (X[:, :4].sum(axis=1) + rng.standard_normal(20_000) > 0).astype(np.float64)
    np.savetxt(folder / "train.csv", np.column_stack([y, X]), delimiter=",", fmt="%.9g")
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 6, "eta": 0.3, "nthread": 2, "seed": 0},
        xgboost.DMatrix(X, label=y),
        100,
    )
    path = folder / "model.ubj"
    booster.save_model(path)
    return path, X[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--rounds", type=int, default=3, help="turns per server and level (median)")
    parser.add_argument("--mlflow-python", type=Path, default=None)
    parser.add_argument("--transform-rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="also serve the model with a shadow variant copying every request",
    )
    parser.add_argument(
        "--capture",
        action="store_true",
        help="also serve the model with 100%% data capture and compare the throughput",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk).", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {"servers": {}}
    with tempfile.TemporaryDirectory(prefix="sagelab-bench-serving-") as tmp:
        folder = Path(tmp)
        model_path, row = train_model(folder)
        csv_row = ",".join(repr(float(v)) for v in row)
        env = {**os.environ, "SAGELAB_HOME": str(folder / "home"), "OMP_NUM_THREADS": "1"}
        for var in ("SAGELAB_DB_URL", "SAGELAB_LAKE", "SAGELAB_CONFIG"):
            env.pop(var, None)

        # sagelab: train the same model through a job (same data, parameters and seed),
        # deploy it and serve it.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sagelab",
                "train",
                "--algorithm",
                "xgboost",
                "--train",
                str(folder / "train.csv"),
                "--name",
                "bench-model",
                "--hp",
                "num_round=100",
                "--hp",
                "max_depth=6",
                "--hp",
                "eta=0.3",
                "--hp",
                "objective=binary:logistic",
                "--json",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        deploys = [("bench", [])]
        if args.capture:
            deploys.append(("bench-capture", ["--data-capture", "100"]))
        if args.shadow:
            deploys.append(("bench-shadow", ["--shadow", "Shadow=bench-model:100"]))
        deploy = [sys.executable, "-m", "sagelab", "deploy", "bench-model", "--instances"]
        for endpoint, extra in deploys:
            subprocess.run(
                [*deploy, str(args.workers), "--endpoint", endpoint, *extra, "--json"],
                env=env,
                check=True,
                capture_output=True,
            )
        servers: dict[str, tuple[list[str], str, str, str, dict[str, str]]] = {}
        port = sagelab_port = free_port()
        servers["sagelab"] = (
            [
                sys.executable,
                "-m",
                "sagelab",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            f"http://127.0.0.1:{port}/endpoints/bench/invocations",
            f"http://127.0.0.1:{port}/ping",
            csv_row,
            env,
        )
        for flag, name in ((args.capture, "capture"), (args.shadow, "shadow")):
            if flag:  # no command: an endpoint of the sagelab server above
                servers[f"sagelab+{name}"] = (
                    [],
                    f"http://127.0.0.1:{port}/endpoints/bench-{name}/invocations",
                    f"http://127.0.0.1:{port}/ping",
                    csv_row,
                    env,
                )
        (folder / "minimal_app.py").write_text(textwrap.dedent(MINIMAL_APP))
        port = free_port()
        servers["minimal"] = (
            [
                sys.executable,
                "-m",
                "uvicorn",
                "minimal_app:app",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            f"http://127.0.0.1:{port}/invocations",
            f"http://127.0.0.1:{port}/",
            csv_row,
            {**env, "BENCH_MODEL": str(model_path), "PYTHONPATH": str(folder)},
        )
        mlflow_python = args.mlflow_python
        if mlflow_python is not None and mlflow_python.exists():
            subprocess.run(
                [
                    str(mlflow_python),
                    "-c",
                    "import sys, xgboost, mlflow.xgboost; b = xgboost.Booster(model_file=sys.argv[1]);"
                    " mlflow.xgboost.save_model(b, sys.argv[2])",
                    str(model_path),
                    str(folder / "mlflow-model"),
                ],
                check=True,
                capture_output=True,
                env=env,
            )
            port = free_port()
            header = ",".join(f"f{i}" for i in range(FEATURES))
            servers["mlflow"] = (
                [
                    str(mlflow_python.parent / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    str(folder / "mlflow-model"),
                    "--env-manager",
                    "local",
                    "-p",
                    str(port),
                    "-h",
                    "127.0.0.1",
                    "--workers",
                    str(args.workers),
                ],
                f"http://127.0.0.1:{port}/invocations",
                f"http://127.0.0.1:{port}/ping",
                f"{header}\n{csv_row}",
                # MLflow starts ``uvicorn`` by name: its own virtualenv's comes first.
                {**env, "PATH": f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}"},
            )
        # All servers run at once (an idle server costs nothing) and take turns under load,
        # round after round, so that a change in the machine's load hits them alike.
        procs = []
        counted: dict[str, Any] = {}
        try:
            for name, (command, url, ready, body, server_env) in servers.items():
                if command:
                    procs.append(
                        subprocess.Popen(
                            command,
                            env=server_env,
                            cwd=folder,
                            start_new_session=True,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
                    wait_ready(ready)
                check = httpx.post(
                    url, content=body, headers={"Content-Type": "text/csv"}, timeout=30
                )
                if check.status_code != 200:
                    raise RuntimeError(f"{name} answered {check.status_code}: {check.text[:300]}")
                run_wrk(url, body, "text/csv", 8, 2, folder)  # warm-up
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {n: {} for n in servers}
            for r in range(args.rounds):
                for c in args.concurrency:
                    for name, (_, url, _, body, _) in servers.items():
                        runs[name].setdefault(str(c), []).append(
                            run_wrk(url, body, "text/csv", c, args.duration, folder)
                        )
                print(f"  round {r + 1}/{args.rounds} done", flush=True)
            if args.capture or args.shadow:
                time.sleep(2)  # the workers publish their counters every half second
            if args.capture:
                counted = capture_counts(f"http://127.0.0.1:{sagelab_port}/metrics")
            if args.shadow:
                results["shadow"] = shadow_counts(f"http://127.0.0.1:{sagelab_port}/metrics")
        finally:
            for proc in procs:
                stop(proc)
        if args.capture:
            # Stopped cleanly: every worker has written what it had queued.
            lake = folder / "home" / "lake" / "data-capture"
            counted["captured"] = sum(
                len(f.read_bytes().splitlines()) for f in lake.rglob("*.jsonl")
            )
            results["capture"] = counted
        for name, levels in runs.items():
            results["servers"][name] = {
                c: {
                    "rps": statistics.median(x["rps"] for x in xs),
                    "p50_ms": statistics.median(x["p50_ms"] for x in xs),
                    "p99_ms": statistics.median(x["p99_ms"] for x in xs),
                    "non_2xx": sum(x["non_2xx"] for x in xs),
                    "runs": xs,
                }
                for c, xs in levels.items()
            }
        transform = Path(__file__).with_name("transform.py")
        if transform.exists() and args.transform_rows:
            sys.path.insert(0, str(transform.parent))
            import transform as transform_bench  # type: ignore[import-not-found]

            results["transform"] = transform_bench.run(args.transform_rows)

    results["machine"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "workers": args.workers,
        "duration_s": args.duration,
    }
    print(f"\nSingle-row CSV requests, {args.workers} workers each, {args.duration} s per level")
    print(f"{'server':16s}" + "".join(f"{'c=' + str(c):>26s}" for c in args.concurrency))
    base = results["servers"].get("minimal", {})
    for name, levels in results["servers"].items():
        cells: list[str] = []
        for c in args.concurrency:
            r = levels[str(c)]
            ratio = r["rps"] / base[str(c)]["rps"] if base else float("nan")
            cells.append(f"{r['rps']:8.0f} r/s {ratio:5.2f}x p99 {r['p99_ms']:5.1f}ms")
        print(f"{name:16s}" + "".join(f"{cell:>26s}" for cell in cells))
    if "capture" in results:
        plain, captured = results["servers"]["sagelab"], results["servers"]["sagelab+capture"]
        ratios = {c: captured[str(c)]["rps"] / plain[str(c)]["rps"] for c in args.concurrency}
        results["capture"]["rps_ratio"] = ratios
        print(
            "data capture of every request: "
            + ", ".join(
                f"{ratio:.3f}x the plain endpoint's r/s at c={c}" for c, ratio in ratios.items()
            )
        )
        counts = results["capture"]
        print(
            f"  {counts['invocations']:.0f} answered, {counts['captured']} captured, "
            f"{counts['dropped']:.0f} dropped (captured + dropped should equal answered)"
        )
    if "shadow" in results:
        plain, shadowed = results["servers"]["sagelab"], results["servers"]["sagelab+shadow"]
        ratios = {c: shadowed[str(c)]["rps"] / plain[str(c)]["rps"] for c in args.concurrency}
        results["shadow"]["rps_ratio"] = ratios
        print(
            "a shadow copying every request: "
            + ", ".join(
                f"{ratio:.3f}x the plain endpoint's r/s at c={c} (p50 "
                f"{shadowed[str(c)]['p50_ms']:.2f} vs {plain[str(c)]['p50_ms']:.2f} ms)"
                for c, ratio in ratios.items()
            )
        )
        counts = results["shadow"]
        print(
            f"  {counts['invocations']:.0f} answered, the shadow answered "
            f"{counts['shadow_answered']:.0f} copies and dropped {counts['shadow_dropped']:.0f}"
        )
    if "transform" in results:
        print("batch transform:", json.dumps(results["transform"]))
    print(f"load {load_before:.2f} before, {results['machine']['load_after']:.2f} after")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
