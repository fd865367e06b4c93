"""``sagelab serve``: one listening socket, a pool of worker processes, every endpoint.

The supervisor binds the socket (127.0.0.1 unless told otherwise; any other address
needs a token), then starts worker processes that share it, each running uvicorn
with :class:`~sagelab.serving._app.InvocationApp`. Every worker serves every
endpoint, with each variant's model loaded once per worker and its libraries held
to one thread (``OMP_NUM_THREADS=1``: with several workers, XGBoost's default
threading would have them fight over the cores). The kernel spreads connections
over the workers, and the weighted choice of a variant happens per request.

An instance is a worker process: the pool has as many workers as the served
endpoints' variants have instances in all (at least one, at most ``max_workers``),
unless ``workers`` fixes the number. The supervisor looks at the store every
half second: it grows or shrinks the pool when instance counts change, replaces a
worker that died, and every ``metrics_period`` seconds appends the growth of the
workers' counters to the endpoints' metric series.

uvicorn's own multi-process supervisor runs a fixed number of workers; this one
exists because the pool follows the endpoints' instance counts while it runs. A
worker the pool no longer needs is drained before it is stopped: for
``drain_seconds`` it keeps serving but answers every request with
``Connection: close``, so clients move their connections to the other workers
instead of finding them closed under a request. After each metrics period the
:class:`~sagelab.serving._autoscale.Autoscaler` applies the endpoints' scaling
policies to the period's invocations, and twice a second a
:class:`~sagelab.serving._rollout.RolloutManager` moves blue/green updates along,
rolling one back when its alarms fire on the traffic this server served.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sagelab.config import Settings
from sagelab.errors import InvalidInput
from sagelab.serving._autoscale import Autoscaler, EndpointAutoscaling
from sagelab.serving._endpoints import EndpointService
from sagelab.serving._metrics import deltas, read_snapshots
from sagelab.serving._rollout import RolloutManager
from sagelab.store import utcnow

__all__ = ["ServerOptions", "run_server", "worker_main"]

_log = logging.getLogger("sagelab.serving")
#: Threads each worker's numerical libraries may use.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ServerOptions:
    """How ``sagelab serve`` runs.

    Attributes:
        host: the address to bind (127.0.0.1 by default; others need ``token``).
        port: the TCP port (0 picks a free one, reported through ``on_ready``).
        workers: a fixed pool size (None: follow the endpoints' instance counts).
        max_workers: the most workers the pool grows to when following instance counts.
        token: when set, invocations need ``Authorization: Bearer <token>``.
        metrics_period: seconds per point of the endpoints' metric series (and between
            two autoscaling decisions).
        refresh_interval: seconds between two looks at the store.
        drain_seconds: how long a worker the pool no longer needs keeps answering (with
            ``Connection: close``) before it is stopped.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int | None = None
    max_workers: int = max(os.cpu_count() or 1, 1) * 2
    token: str = ""
    metrics_period: float = 60.0
    refresh_interval: float = 0.5
    drain_seconds: float = 2.0


def _check_options(options: ServerOptions) -> None:
    problems = []
    try:
        loopback = ipaddress.ip_address(options.host).is_loopback
    except ValueError:
        loopback = options.host == "localhost"
    if not loopback and not options.token:
        problems.append(
            f"Serving on {options.host} exposes the endpoints beyond this machine; give a "
            "token (--token or SAGELAB_SERVE_TOKEN) that clients send as 'Authorization: "
            "Bearer <token>'."
        )
    if options.workers is not None and options.workers < 1:
        problems.append(f"workers must be at least 1; got {options.workers}.")
    if options.max_workers < 1:
        problems.append(f"max_workers must be at least 1; got {options.max_workers}.")
    if not 0 <= options.port <= 65535:
        problems.append(f"The port must be in 0..65535; got {options.port}.")
    if options.metrics_period <= 0:
        problems.append(f"metrics_period must be positive; got {options.metrics_period}.")
    if problems:
        raise InvalidInput(" ".join(problems))


def run_server(
    settings: Settings,
    service: EndpointService,
    options: ServerOptions,
    *,
    on_ready: Callable[[str, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``should_stop()``), then stop the workers gracefully.

    Raises:
        InvalidInput: bad options (an exposed address without a token...).
        OSError: the address is taken.
    """
    _check_options(options)
    sock = socket.socket(socket.AF_INET6 if ":" in options.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, options.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    run_dir = settings.home / "serving" / f"{port}-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    for var in _THREAD_VARIABLES:  # inherited by the workers, which spawn after this
        os.environ.setdefault(var, "1")
    pool = _Pool(settings, sock, run_dir, options)
    autoscaler = Autoscaler(EndpointAutoscaling(service.store))
    rollouts = RolloutManager(service.store)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        pool.resize(_desired(service, options))
        if on_ready is not None:
            on_ready(options.host, port)
        last_flush = time.monotonic()
        before = read_snapshots(run_dir)
        while not stopping and not (should_stop is not None and should_stop()):
            time.sleep(options.refresh_interval)
            try:
                for line in rollouts.tick(lambda: read_snapshots(run_dir)):
                    _log.warning("Deployment of %s", line)
                pool.resize(_desired(service, options))
                elapsed = time.monotonic() - last_flush
                if elapsed >= options.metrics_period:
                    last_flush = time.monotonic()
                    after = read_snapshots(run_dir)
                    points = deltas(before, after, _instances(service), utcnow())
                    service.record_metrics(points)
                    before = after
                    invocations = {
                        (p.endpoint, p.variant): p.value for p in points if p.name == "Invocations"
                    }
                    for line in autoscaler.period(invocations, elapsed):
                        _log.warning("Autoscaling %s", line)
            except Exception:  # the store may be briefly unreachable: keep serving
                _log.exception("The server could not read or write the store; retrying.")
        with contextlib.suppress(Exception):
            after = read_snapshots(run_dir)
            service.record_metrics(deltas(before, after, _instances(service), utcnow()))
    finally:
        pool.resize(0)
        sock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        shutil.rmtree(run_dir, ignore_errors=True)


def _desired(service: EndpointService, options: ServerOptions) -> int:
    if options.workers is not None:
        return options.workers
    return min(max(service.instance_total(), 1), options.max_workers)


def _instances(service: EndpointService) -> dict[tuple[str, str], int]:
    out = {}
    for name in service.revisions():
        served = service.served(name)
        if served is not None:
            for v in served[1]:
                out[(name, v["VariantName"])] = int(v.get("CurrentInstanceCount", 1))
    return out


class _Pool:
    """Worker processes sharing the socket; replaced when they die, drained when surplus."""

    def __init__(
        self, settings: Settings, sock: socket.socket, run_dir: Path, options: ServerOptions
    ) -> None:
        self.settings, self.sock, self.run_dir, self.options = settings, sock, run_dir, options
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Any] = []
        #: surplus workers being drained, with the time to stop each
        self.draining: list[tuple[Any, float]] = []

    def resize(self, n: int) -> None:
        """Grow to ``n`` workers, or drain the surplus; ``0`` stops every worker now."""
        for w in [w for w in self.workers if not w.is_alive()]:
            _log.warning("Worker %s exited (code %s); starting another.", w.pid, w.exitcode)
            self.workers.remove(w)
        while len(self.workers) < n:
            w = self.context.Process(
                target=worker_main,
                args=(self.settings.model_dump(), self.sock, str(self.run_dir), self.options),
                name="sagelab-serve-worker",
            )
            w.start()
            self.workers.append(w)
        surplus = self.workers[n:]
        self.workers = self.workers[:n]
        now = time.monotonic()
        for w in surplus:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGUSR1)  # answer with Connection: close from now on
            self.draining.append((w, now + (self.options.drain_seconds if n else 0.0)))
        due = [w for w, at in self.draining if n == 0 or at <= now or not w.is_alive()]
        self.draining = [(w, at) for w, at in self.draining if w not in due]
        for w in due:  # uvicorn finishes its open requests on SIGTERM
            w.terminate()
        deadline = time.monotonic() + 10
        for w in due:
            w.join(max(deadline - time.monotonic(), 0.1))
            if w.is_alive():
                w.kill()
                w.join(1)


def worker_main(
    settings: dict[str, Any], sock: socket.socket, run_dir: str, options: ServerOptions
) -> None:
    """A worker process: load the endpoints, serve until SIGTERM."""
    import uvicorn

    from sagelab.serving._app import InvocationApp
    from sagelab.serving._capture import CaptureWriter
    from sagelab.serving._metrics import Counters
    from sagelab.serving._shadow import ShadowRunner
    from sagelab.serving._table import EndpointTable

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    service = EndpointService.from_settings(Settings(**settings))
    counters = Counters()
    folder = Path(run_dir)
    table = EndpointTable(
        service, interval=options.refresh_interval, on_tick=lambda: counters.write(folder)
    )
    counters.loaded_models = table.loaded_models  # LoadedModelCount, read at each snapshot
    table.start()
    capture = CaptureWriter(service.registry.lake, on_drop=counters.capture_dropped)
    capture.start()
    shadow = ShadowRunner(counters, settings, folder)
    app = InvocationApp(table, counters, folder, options.token, capture=capture, shadow=shadow)
    # uvicorn re-raises the signal that stopped it once it has shut down; exiting through
    # Python rather than the signal's default action lets the ``finally`` below run.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_quietly)
    signal.signal(signal.SIGUSR1, lambda signum, frame: app.drain())
    config = uvicorn.Config(
        app,
        lifespan="on",  # its shutdown, after the last request, writes out the captures
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        shadow.close()
        capture.close()  # already done at the lifespan's shutdown, unless uvicorn was forced
        table.stop()
        with contextlib.suppress(OSError):
            counters.write(folder)


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
