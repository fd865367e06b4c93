"""The HTTP application each server worker runs under uvicorn.

Routes: ``POST /endpoints/{name}/invocations`` (SageMaker Runtime's path),
``GET /ping``, ``GET /metrics`` (Prometheus) and ``GET /endpoints`` (what this
worker serves). It is a plain ASGI callable rather than a FastAPI app because the
invocation path is the one place where per-request overhead is the product: a
router, dependency injection and response models would cost more than predicting
one row with a tree model. Everything it does is a few dictionary lookups, parsing
the body, the model's ``predict`` and writing the answer.

No request can kill a worker: every error becomes an answer (4xx for the caller's
mistakes, 5xx for the model's) and is counted.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from sagelab.errors import InvalidInput
from sagelab.serving._capture import INFERENCE_ID_HEADER, CaptureWriter
from sagelab.serving._codec import BadRequest, decode_rows, encode_prediction, media_type, negotiate
from sagelab.serving._metrics import Counters, read_snapshots, render_prometheus
from sagelab.serving._multimodel import TARGET_MODEL_HEADER, MultiModelVariant, TargetModelError
from sagelab.serving._shadow import ShadowRunner
from sagelab.serving._table import EndpointTable, ServedVariant

__all__ = ["MAX_BODY_BYTES", "TARGET_VARIANT_HEADER", "VARIANT_HEADER", "InvocationApp"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: SageMaker's limit on a real-time request's payload.
MAX_BODY_BYTES = 6 * 1024 * 1024
#: The request header that picks a variant, and the response header naming the one that served.
TARGET_VARIANT_HEADER = "x-amzn-sagemaker-target-variant"
VARIANT_HEADER = "x-amzn-invoked-production-variant"
_PREFIX, _SUFFIX = "/endpoints/", "/invocations"
_log = logging.getLogger("sagelab.serving")


class InvocationApp:
    """ASGI application: invocations, health, metrics.

    Args:
        table: the endpoints this worker serves.
        counters: where this worker counts its requests.
        run_dir: the server's folder of per-worker metric snapshots.
        token: when set, invocations need ``Authorization: Bearer <token>``.
        capture: queues the requests of endpoints with data capture; written out in full
            at the lifespan's shutdown.
        shadow: sends copies of requests for shadow variants to the worker's shadow process.
    """

    def __init__(
        self,
        table: EndpointTable,
        counters: Counters,
        run_dir: Path,
        token: str = "",
        *,
        capture: CaptureWriter | None = None,
        shadow: ShadowRunner | None = None,
    ) -> None:
        self.table, self.counters, self.run_dir = table, counters, run_dir
        self.capture = capture
        self.shadow = shadow
        self._token = f"Bearer {token}".encode() if token else b""
        #: Set when the server drains this worker: answers then close their connection.
        self.draining = False

    def drain(self) -> None:
        """Answer every request from now on with ``Connection: close`` (the pool stops
        this worker soon: its clients reconnect to the others before that)."""
        self.draining = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
            if method != "POST":
                await _error(send, 405, "MethodNotAllowed", "Invocations take POST.")
                return
            await self._invoke(path[len(_PREFIX) : -len(_SUFFIX)], scope, receive, send)
        elif method == "GET" and path == "/ping":
            await _answer(send, 200, b"{}", "application/json")
        elif method == "GET" and path == "/metrics":
            totals = read_snapshots(self.run_dir, self.counters)
            body = render_prometheus(totals, self.table.instances())
            await _answer(send, 200, body, "text/plain; version=0.0.4; charset=utf-8")
        elif method == "GET" and path == "/endpoints":
            served = {
                e.name: {"Revision": e.revision, "Variants": [v.name for v in e.variants]}
                for e in self.table.endpoints.values()
            }
            await _answer(send, 200, json.dumps(served).encode(), "application/json")
        else:
            await _error(send, 404, "NotFound", f"No route {method} {path}.")

    async def _invoke(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter_ns()
        headers = _headers(scope)
        if self._token and not hmac.compare_digest(
            headers.get("authorization", "").encode(), self._token
        ):
            await _error(send, 401, "Unauthorized", "This server needs a bearer token.")
            return
        endpoint = self.table.get(name)
        if endpoint is None:
            await _error(
                send,
                404,
                "ValidationError",
                f"Endpoint {name} not found or not InService.",
            )
            return
        target = headers.get(TARGET_VARIANT_HEADER)
        if target:
            variant = endpoint.by_name.get(target)
            if variant is None:
                await _error(
                    send,
                    400,
                    "ValidationError",
                    f"Endpoint {name} has no variant {target!r}; it has "
                    f"{', '.join(v.name for v in endpoint.variants)}.",
                )
                return
        else:
            variant = endpoint.choose()
        if isinstance(variant, MultiModelVariant):  # the request's model, loaded when first asked
            try:
                variant, hit, load_us = await variant.models.get(headers.get(TARGET_MODEL_HEADER))
            except TargetModelError as exc:
                self.counters.failed(name, variant.name, exc.status)
                await _answer(
                    send,
                    exc.status,
                    _error_body(exc.code, str(exc)),
                    "application/json",
                    ((VARIANT_HEADER.encode(), variant.name.encode()),),
                )
                return
            self.counters.model_cache(name, variant.name, hit=hit, load_us=load_us)
        request, prediction = b"", None
        try:
            status, body, kind, model_ns, request, prediction = await self._predict(
                name, variant, headers, receive
            )
        except BadRequest as exc:
            status, body, kind, model_ns = (
                exc.status,
                _error_body("ValidationError", str(exc)),
                "",
                0,
            )
        except Exception as exc:  # the model's fault: a 5xx, counted, and the worker lives
            _log.exception("Endpoint %s variant %s failed to predict", name, variant.name)
            status, model_ns = 500, 0
            body, kind = _error_body("ModelError", f"{type(exc).__name__}: {exc}"), ""
        if status == 200:
            elapsed = time.perf_counter_ns() - started
            self.counters.served(name, variant.name, model_ns / 1000, (elapsed - model_ns) / 1000)
            if endpoint.capture is not None and self.capture is not None:
                self.capture.offer(
                    endpoint.capture,
                    name,
                    variant.name,
                    headers.get("content-type", ""),
                    request,
                    kind,
                    body,
                    headers.get(INFERENCE_ID_HEADER),
                )
        else:
            self.counters.failed(name, variant.name, status)
        extra: tuple[tuple[bytes, bytes], ...] = ((VARIANT_HEADER.encode(), variant.name.encode()),)
        if self.draining:
            extra += ((b"connection", b"close"),)
        await _answer(send, status, body, kind or "application/json", extra)
        if status == 200 and endpoint.shadows and self.shadow is not None:  # after the answer
            self.shadow.offer(
                name,
                endpoint.shadows,
                request,
                media_type(headers.get("content-type")),
                kind,
                prediction,
                headers.get(INFERENCE_ID_HEADER),
            )

    async def _predict(
        self, name: str, variant: ServedVariant, headers: dict[str, str], receive: Receive
    ) -> tuple[int, bytes, str, int, bytes, Any]:
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise BadRequest(
                f"The body is {length} bytes; an invocation takes at most {MAX_BODY_BYTES} "
                "bytes (6 MB). Send fewer rows per request, or use batch transform.",
                413,
            )
        content_type = media_type(headers.get("content-type"))
        accept = negotiate(headers.get("accept"), content_type or "text/csv")
        body = await _read_body(receive)
        if variant.pipeline is not None:  # each step timed; ModelLatency is their sum
            answer, kind, step_ns = variant.pipeline.invoke(body, content_type, accept)
            for step, ns in zip(variant.pipeline.step_names, step_ns, strict=True):
                self.counters.served(name, f"{variant.name}/{step}", ns / 1000, 0.0)
            return 200, answer, kind, sum(step_ns), body, None
        X = decode_rows(body, content_type, variant.num_features, variant.feature_names)
        t = time.perf_counter_ns()
        try:
            prediction = variant.algorithm.predict(X)
        except InvalidInput as exc:
            raise BadRequest(str(exc)) from None
        model_ns = time.perf_counter_ns() - t
        return 200, encode_prediction(prediction, accept), accept, model_ns, body, prediction

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start at once; at shutdown (after the last request), write out the captures."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.shadow is not None:  # its last answers may be captured
                    await asyncio.to_thread(self.shadow.close)
                if self.capture is not None:
                    await asyncio.to_thread(self.capture.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("The client went away before sending the whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(
                f"The body is over {MAX_BODY_BYTES} bytes (6 MB); send fewer rows per "
                "request, or use batch transform.",
                413,
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"ErrorCode": code, "Message": message}).encode()


async def _error(send: Send, status: int, code: str, message: str) -> None:
    await _answer(send, status, _error_body(code, message), "application/json")


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
