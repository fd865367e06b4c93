"""A server on 127.0.0.1 with two trained models, shared by a test module's tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from sagelab.session import Session
from sagelab.training import Model

#: Small single-threaded models: the machine's cores are shared by the jobs and the server.
XGB = {"objective": "binary:logistic", "eval_metric": "auc", "nthread": 1}


@dataclass(frozen=True)
class Served:
    """A module's installation, its two models and its running server."""

    session: Session
    home: Path
    url: str
    job_a: str
    job_b: str
    rows: np.ndarray  # held-out feature rows, label dropped

    def model(self, job: str) -> Model:
        return self.session.training.model(job)

    def invoke(
        self, endpoint: str, body: bytes | str, content_type: str = "text/csv", **headers: str
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}/endpoints/{endpoint}/invocations",
            content=body.encode() if isinstance(body, str) else body,
            headers={"Content-Type": content_type, **headers},
            timeout=60,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def start_server(home: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SAGELAB_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sagelab", "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/ping", timeout=2).status_code == 200,
            timeout=180,
            what="the server",
        )
    except AssertionError:
        stop_server(proc)
        log = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise AssertionError(f"the server did not start: {log}") from None
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it stops its workers), then kill its group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def served_env(
    root: Path, *, workers: int | None = 2, extra: tuple[str, ...] = ()
) -> Iterator[Served]:
    """Two trained models and a server (``workers`` None: its pool follows the instances)."""
    home = root / "home"
    data = load_breast_cancer()
    X, y = data.data, data.target
    train = np.column_stack([y[:500], X[:500]])
    root.mkdir(parents=True, exist_ok=True)
    np.savetxt(root / "cancer.csv", train, delimiter=",", fmt="%.17g")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGELAB_HOME", str(home))
        for var in ("SAGELAB_DB_URL", "SAGELAB_LAKE", "SAGELAB_CONFIG", "SAGELAB_SERVE_URL"):
            mp.delenv(var, raising=False)
        session = Session()
        training = session.training
        a = training.submit(
            "xgboost", str(root / "cancer.csv"), hyperparameters={**XGB, "num_round": 10}
        )
        b = training.submit(
            "xgboost",
            str(root / "cancer.csv"),
            hyperparameters={**XGB, "num_round": 3, "max_depth": 2},
        )
        for job in (a, b):
            info = session.jobs.wait(job.name, timeout=300)
            assert info.status == "Completed", info.failure_reason
        port = free_port()
        pool = ("--workers", str(workers)) if workers is not None else ()
        proc = start_server(home, port, *pool, "--metrics-period", "1", *extra)
        try:
            yield Served(session, home, f"http://127.0.0.1:{port}", a.name, b.name, X[500:])
        finally:
            stop_server(proc)
            session.jobs.close()


def csv_line(row: np.ndarray) -> str:
    return ",".join(repr(float(v)) for v in row)
