"""Shadow variants: a sampled copy of the traffic, answered off the request path.

As SageMaker's shadow tests do, a shadow variant gets a copy of a share of an
endpoint's requests (``SamplingPercentage``); its answers are never returned to the
caller, and the caller never waits for it.

In a worker, a sampled request costs the caller one append to a bounded in-memory
queue, made once its answer is ready. A thread of the worker sends the queue over a
Unix socket to the worker's *shadow process*, which the worker starts when its first
copy comes. That process runs at a lower CPU priority (``nice``) with its own
interpreter, so the shadow's parsing and prediction never hold the worker's GIL
and, on a busy machine, get the CPU the production path leaves. It keeps its own
endpoint table (the shadows' models loaded and checked like any other), and counts
for the shadow variant what a production variant counts (``Invocations``,
``ModelLatency``, errors) plus how far its predictions are from the production
variant's on the same request (``ShadowPredictionDifference``, the mean absolute
difference per row), in the server's run folder like a worker. With data capture
on, it captures the shadow's answers under the shadow variant's name. When the
shadow falls behind, copies are dropped and counted (``ShadowDroppedRequests``),
never waited for.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import random
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sagelab.serving._codec import BadRequest, decode_rows, encode_prediction

if TYPE_CHECKING:
    from sagelab.serving._metrics import Counters
    from sagelab.serving._table import ServedVariant

__all__ = ["SHADOW", "ShadowRunner", "ShadowVariant", "prediction_difference", "shadow_main"]

SHADOW = "Shadow"
#: How much lower the shadow process's CPU priority is than its worker's.
SHADOW_NICE = 19
_log = logging.getLogger("sagelab.serving")
_FRAME = struct.Struct("!I")
#: Seconds between two sends of the queued copies to the shadow process.
_SEND_INTERVAL = 0.02


@dataclass(frozen=True)
class ShadowVariant:
    """A shadow variant as a worker serves it: its model and the share it copies."""

    variant: ServedVariant
    percentage: float


#: (endpoint, shadow variant, request body, request type, answer type, production
#: prediction, inference id)
_Copy = tuple[str, str, bytes, str, str, Any, "str | None"]


def prediction_difference(production: Any, shadow: Any) -> float:
    """The mean absolute difference per row between two predictions of the same rows
    (:class:`~sagelab.algorithms.Prediction` objects or arrays: their class
    probabilities when both have them, else their values; for rows of several values,
    the mean over them too); NaN when their shapes differ."""
    both = all(getattr(p, "probabilities", None) is not None for p in (production, shadow))

    def numbers(p: Any) -> np.ndarray:
        return np.asarray(p.probabilities if both else getattr(p, "values", p), dtype=float)

    a, b = numbers(production), numbers(shadow)
    if a.shape != b.shape:
        return float("nan")
    return float(np.mean(np.abs(a - b))) if a.size else 0.0


class ShadowRunner:
    """One worker's queue of shadow copies, the thread that sends it, and the shadow
    process that answers it.

    Args:
        counters: the worker's counters (dropped copies are counted there).
        settings: the worker's settings, as a mapping (the shadow process reads the
            same store and lake).
        run_dir: the server's folder of metric snapshots.
        max_queued: the most copies waiting in the worker; beyond, new ones are
            dropped and counted.
    """

    def __init__(
        self,
        counters: Counters,
        settings: dict[str, Any],
        run_dir: Path,
        *,
        max_queued: int = 1024,
    ) -> None:
        self.counters, self.settings, self.run_dir = counters, settings, run_dir
        self.max_queued = max_queued
        # deque.append and popleft are atomic: the request path takes no lock.
        self._queue: deque[_Copy] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._sock: socket.socket | None = None

    # ------------------------------------------------------------------ request path
    def offer(
        self,
        endpoint: str,
        shadows: list[ShadowVariant],
        body: bytes,
        request_type: str,
        accept: str,
        production: Any,
        inference_id: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """Queue a copy of an answered request for each shadow that samples it."""
        for shadow in shadows:
            if shadow.percentage < 100.0 and draw() * 100.0 >= shadow.percentage:
                continue
            name = shadow.variant.name
            if len(self._queue) >= self.max_queued or self._stop.is_set():
                self.counters.shadow_dropped(endpoint, name)
                continue
            self._queue.append(
                (endpoint, name, body, request_type, accept, production, inference_id)
            )
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shadow-sender", daemon=True)
                self._thread.start()
            if len(self._queue) >= self.max_queued // 4:  # else the sender's next tick
                self._wake.set()

    # ------------------------------------------------------------------ the sender
    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued and let the shadow process answer it (for at most
        ``timeout`` seconds in all), then stop it."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)  # the process answers the rest, then exits
        if self._process is not None:
            self._process.join(max(deadline - time.monotonic(), 0.1))
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2)
        if self._sock is not None:
            self._sock.close()

    def _run(self) -> None:
        # The sender wakes every few milliseconds and sends what has queued in one frame,
        # rather than once per request: each wake-up takes the worker's GIL from the
        # requests for a moment.
        while True:
            self._wake.wait(_SEND_INTERVAL)
            self._wake.clear()
            while self._queue:
                copies = [self._queue.popleft() for _ in range(min(len(self._queue), 256))]
                try:
                    self._send(copies)
                except Exception:  # a dead shadow process: count the copies, start another
                    _log.exception("Shadow copies for %s could not be sent", copies[0][0])
                    for copy in copies:
                        self.counters.shadow_dropped(copy[0], copy[1])
                    self._reset()
            if self._stop.is_set():
                return

    def _send(self, copies: list[_Copy]) -> None:
        sock = self._sock
        if sock is None or self._process is None or not self._process.is_alive():
            sock = self._start_process()
        payload = pickle.dumps(copies, protocol=pickle.HIGHEST_PROTOCOL)
        sock.sendall(_FRAME.pack(len(payload)) + payload)

    def _start_process(self) -> socket.socket:
        self._reset()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=shadow_main,
            args=(self.settings, str(self.run_dir), theirs),
            name="sagelab-shadow",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._sock, self._process = ours, process
        return ours

    def _reset(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        self._sock = self._process = None


# ---------------------------------------------------------------------- the shadow process
def shadow_main(settings: dict[str, Any], run_dir: str, sock: socket.socket) -> None:
    """The shadow process: answer copies until the worker closes the socket."""
    from sagelab.config import Settings
    from sagelab.serving._capture import CaptureWriter
    from sagelab.serving._endpoints import EndpointService
    from sagelab.serving._metrics import Counters
    from sagelab.serving._table import EndpointTable

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when this ends
    with contextlib.suppress(OSError):
        os.nice(SHADOW_NICE)
    service = EndpointService.from_settings(Settings(**settings))
    counters = Counters()
    folder = Path(run_dir)
    table = EndpointTable(service, on_tick=lambda: counters.write(folder))
    table.start()
    capture = CaptureWriter(service.registry.lake, on_drop=counters.capture_dropped)
    capture.start()
    stream = sock.makefile("rb")
    try:
        while True:
            header = stream.read(_FRAME.size)
            if len(header) < _FRAME.size:
                return  # the worker closed its end
            payload = stream.read(_FRAME.unpack(header)[0])
            copies: list[_Copy] = pickle.loads(payload)  # our own worker's, over a socketpair
            for copy in copies:
                try:
                    _answer(table, counters, capture, copy)
                except Exception:
                    _log.exception("A shadow copy for %s could not be answered", copy[0])
    finally:
        capture.close()
        table.stop()
        with contextlib.suppress(OSError):
            counters.write(folder)


def _answer(table: Any, counters: Counters, capture: Any, copy: _Copy) -> None:
    endpoint_name, name, body, request_type, accept, production, inference_id = copy
    endpoint = table.get(endpoint_name)
    shadow = (
        next((s for s in endpoint.shadows if s.variant.name == name), None) if endpoint else None
    )
    if shadow is None:  # the endpoint changed since the copy was made
        counters.shadow_dropped(endpoint_name, name)
        return
    variant = shadow.variant
    started = time.perf_counter_ns()
    try:
        X = decode_rows(body, request_type, variant.num_features, variant.feature_names)
        t = time.perf_counter_ns()
        prediction = variant.algorithm.predict(X)
        model_ns = time.perf_counter_ns() - t
        answer = encode_prediction(prediction, accept)
    except BadRequest as exc:
        counters.failed(endpoint_name, name, exc.status)
        return
    except Exception:
        _log.exception("Shadow variant %s of %s failed to predict", name, endpoint_name)
        counters.failed(endpoint_name, name, 500)
        return
    elapsed = time.perf_counter_ns() - started
    counters.served(endpoint_name, name, model_ns / 1000, (elapsed - model_ns) / 1000)
    counters.shadow_compared(endpoint_name, name, prediction_difference(production, prediction))
    if endpoint.capture is not None:
        capture.offer(
            endpoint.capture, endpoint_name, name, request_type, body, accept, answer, inference_id
        )
