"""Shadow variants: a sampled copy of the traffic, answered off the request path.

As SageMaker's shadow tests do, a shadow variant gets a copy of a share of an
endpoint's requests (``SamplingPercentage``); its answers are never returned to the
caller. In a worker, a sampled request costs the caller one append to a bounded
queue, made after its answer is ready; a thread of the worker runs the shadow's
model on the queued requests, and counts for the shadow variant what a production
variant counts (``Invocations``, ``ModelLatency``, errors) plus how far its
predictions are from the production variant's on the same request
(``ShadowPredictionDifference``, the mean absolute difference per row). With data
capture on, its answers are captured under the shadow variant's name. When the
thread falls behind, copies are dropped and counted (``ShadowDroppedRequests``),
never waited for.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sagelab.serving._codec import BadRequest, decode_rows, encode_prediction

if TYPE_CHECKING:
    from sagelab.serving._capture import CaptureWriter
    from sagelab.serving._capture_config import CaptureSpec
    from sagelab.serving._metrics import Counters
    from sagelab.serving._table import ServedVariant

__all__ = ["SHADOW", "ShadowRunner", "ShadowVariant", "prediction_difference"]

SHADOW = "Shadow"
_log = logging.getLogger("sagelab.serving")


@dataclass(frozen=True)
class ShadowVariant:
    """A shadow variant as a worker serves it: its model and the share it copies."""

    variant: ServedVariant
    percentage: float


#: (endpoint, shadow, request body, request type, answer type, production prediction,
#: capture spec, inference id)
_Copy = tuple[str, ShadowVariant, bytes, str, str, Any, "CaptureSpec | None", "str | None"]


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
    """One worker's queue of shadow copies and the thread that answers them.

    Args:
        counters: the worker's counters.
        capture: where the shadows' answers are captured when their endpoint captures.
        max_queued: the most copies waiting; beyond, new ones are dropped and counted.
    """

    def __init__(
        self,
        counters: Counters,
        capture: CaptureWriter | None = None,
        *,
        max_queued: int = 256,
    ) -> None:
        self.counters, self.capture, self.max_queued = counters, capture, max_queued
        # deque.append and popleft are atomic: the request path takes no lock.
        self._queue: deque[_Copy] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Copies answered since the runner started.
        self.answered = 0

    # ------------------------------------------------------------------ request path
    def offer(
        self,
        endpoint: str,
        shadows: list[ShadowVariant],
        body: bytes,
        request_type: str,
        accept: str,
        production: Any,
        capture: CaptureSpec | None = None,
        inference_id: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """Queue a copy of an answered request for each shadow that samples it."""
        for shadow in shadows:
            if shadow.percentage < 100.0 and draw() * 100.0 >= shadow.percentage:
                continue
            if len(self._queue) >= self.max_queued or self._stop.is_set():
                self.counters.shadow_dropped(endpoint, shadow.variant.name)
                continue
            self._queue.append(
                (endpoint, shadow, body, request_type, accept, production, capture, inference_id)
            )
            self._wake.set()

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shadow-variants", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Answer what is queued (for at most ``timeout`` seconds), then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            while self._queue:
                copy = self._queue.popleft()
                try:
                    self._answer(copy)
                except Exception:  # the thread must outlive any one copy
                    _log.exception("A shadow copy for %s could not be handled", copy[0])
            if self._stop.is_set():
                return

    def _answer(self, copy: _Copy) -> None:
        endpoint, shadow, body, request_type, accept, production, capture, inference_id = copy
        variant = shadow.variant
        started = time.perf_counter_ns()
        try:
            X = decode_rows(body, request_type, variant.num_features, variant.feature_names)
            t = time.perf_counter_ns()
            prediction = variant.algorithm.predict(X)
            model_ns = time.perf_counter_ns() - t
            answer = encode_prediction(prediction, accept)
        except BadRequest as exc:
            self.counters.failed(endpoint, variant.name, exc.status)
            return
        except Exception:
            _log.exception("Shadow variant %s of %s failed to predict", variant.name, endpoint)
            self.counters.failed(endpoint, variant.name, 500)
            return
        elapsed = time.perf_counter_ns() - started
        self.counters.served(endpoint, variant.name, model_ns / 1000, (elapsed - model_ns) / 1000)
        self.counters.shadow_compared(
            endpoint, variant.name, prediction_difference(production, prediction)
        )
        self.answered += 1
        if capture is not None and self.capture is not None:
            self.capture.offer(
                capture,
                endpoint,
                variant.name,
                request_type,
                body,
                accept,
                answer,
                inference_id,
            )
