"""A server on 127.0.0.1 with two trained models, shared by a test module's tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from sagelab.serving import VariantSpec
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


class Load:
    """Client threads posting one CSV row in a loop on kept-alive connections until
    stopped, recording every answer's status and serving variant (a bounded load:
    the caller stops it, and each thread ends within a request's timeout)."""

    def __init__(
        self, env: Served, endpoint: str, body: str, *, clients: int = 2, pause: float = 0.01
    ) -> None:
        self.env, self.endpoint, self.body = env, endpoint, body
        self.clients, self.pause = clients, pause
        #: (monotonic time, status, the X-Amzn-Invoked-Production-Variant header)
        self.answers: list[tuple[float, int, str]] = []
        #: transport errors: requests that got no answer at all
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _client(self) -> None:
        with httpx.Client(base_url=self.env.url, timeout=30) as http:
            while not self._stop.is_set():
                try:
                    r = http.post(
                        f"/endpoints/{self.endpoint}/invocations",
                        content=self.body,
                        headers={"Content-Type": "text/csv"},
                    )
                    variant = r.headers.get("x-amzn-invoked-production-variant", "")
                    self.answers.append((time.monotonic(), r.status_code, variant))
                except httpx.TransportError as exc:
                    self.failures.append(repr(exc))
                time.sleep(self.pause)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def by_variant(self) -> dict[str, dict[int, int]]:
        """Answers counted per serving variant and status."""
        out: dict[str, dict[int, int]] = {}
        for _, status, variant in list(self.answers):
            counts = out.setdefault(variant, {})
            counts[status] = counts.get(status, 0) + 1
        return out


def with_script(job: str, script: Path, function: str, *, instances: int = 1) -> VariantSpec:
    """An AllTraffic variant whose model is followed by a postprocessor script's
    ``function`` (an inference pipeline of two steps)."""
    return VariantSpec(
        "AllTraffic",
        "",
        instance_count=instances,
        pipeline=[
            {"Type": "Model", "Model": job},
            {"Type": "Script", "Target": f"{script}:{function}"},
        ],
    )


def deploy_served(env: Served, endpoint: str, job: str) -> str:
    """Deploy ``job`` as ``endpoint``'s one variant and wait until the server answers
    for it; returns the CSV row it answered."""
    env.session.endpoints.deploy(endpoint, [VariantSpec("AllTraffic", job)])
    body = csv_line(env.rows[0])
    wait_until(lambda: env.invoke(endpoint, body).status_code == 200, what=f"{endpoint} served")
    return body
