"""The SDK's ``Predictor``: invoke an endpoint over HTTP, in the SageMaker SDK's shape."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from sagelab.errors import AlgorithmError, InvalidInput, NotFound, SagelabError, ServiceUnavailable

__all__ = ["InvocationResult", "Predictor", "invoke_endpoint"]


class InvocationResult(dict[str, Any]):
    """An invocation's answer: ``Body`` (bytes), ``ContentType``, ``InvokedProductionVariant``."""


def invoke_endpoint(
    url: str,
    endpoint: str,
    body: bytes,
    *,
    content_type: str = "text/csv",
    accept: str | None = None,
    target_variant: str | None = None,
    token: str = "",
    timeout: float = 60.0,
    client: Any = None,
    target_model: str | None = None,
) -> InvocationResult:
    """POST a body to ``{url}/endpoints/{endpoint}/invocations`` (SageMaker Runtime's
    InvokeEndpoint). ``target_model`` names the model of a multi-model endpoint, a path
    under its prefix.

    Raises:
        InvalidInput: the server refused the request (4xx), with its message.
        NotFound: no such endpoint in service.
        AlgorithmError: the model failed (5xx).
        ServiceUnavailable: no server answers at ``url`` (start one with ``sagelab serve``).
    """
    import httpx

    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    if target_variant:
        headers["X-Amzn-SageMaker-Target-Variant"] = target_variant
    if target_model:
        headers["X-Amzn-SageMaker-Target-Model"] = target_model
    if token:
        headers["Authorization"] = f"Bearer {token}"
    target = f"{url.rstrip('/')}/endpoints/{endpoint}/invocations"
    try:
        if client is not None:
            response = client.post(target, content=body, headers=headers, timeout=timeout)
        else:
            response = httpx.post(target, content=body, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        raise ServiceUnavailable(
            f"No sagelab server answered at {url} ({exc}). Start one with 'sagelab serve', "
            "or point SAGELAB_SERVE_URL at it."
        ) from None
    if response.status_code >= 400:
        raise _error(response.status_code, response.content, endpoint)
    return InvocationResult(
        Body=response.content,
        ContentType=response.headers.get("content-type", ""),
        InvokedProductionVariant=response.headers.get("x-amzn-invoked-production-variant", ""),
    )


def _error(status: int, body: bytes, endpoint: str) -> SagelabError:
    try:
        message = str(json.loads(body).get("Message", ""))
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")[:500]
    text = f"Endpoint {endpoint} answered {status}: {message}"
    if status == 404:
        return NotFound(text)
    if status < 500:
        return InvalidInput(text)
    if status == 503:
        return ServiceUnavailable(text)
    return AlgorithmError(text)


class Predictor:
    """Send rows to an endpoint and read back its predictions.

    Args:
        endpoint_name: the endpoint.
        url: the server (default: the ``serve_url`` setting, http://127.0.0.1:8080).
        content_type: how rows are sent: ``text/csv`` or ``application/json``.
        accept: what to ask back: ``application/json`` (parsed), ``application/jsonlines``
            (parsed, a list), ``text/csv`` (the text).
        token: the server's bearer token, if it has one.
    """

    def __init__(
        self,
        endpoint_name: str,
        url: str | None = None,
        *,
        content_type: str = "text/csv",
        accept: str = "application/json",
        token: str | None = None,
    ) -> None:
        from sagelab.config import get_settings

        settings = get_settings()
        self.endpoint_name = endpoint_name
        self.url = url or settings.serve_url
        self.content_type, self.accept = content_type, accept
        self.token = settings.serve_token if token is None else token
        self._client: Any = None

    def predict(
        self, data: Any, target_variant: str | None = None, target_model: str | None = None
    ) -> Any:
        """Predict for ``data``: rows (array, list of rows, DataFrame), one row, or a
        body already serialized (``bytes``/``str``); ``target_model`` picks the model of a
        multi-model endpoint (a path under its prefix).

        Raises:
            InvalidInput, NotFound, AlgorithmError, ServiceUnavailable: see
                :func:`invoke_endpoint`.
        """
        import httpx

        if self._client is None:
            self._client = httpx.Client()
        result = invoke_endpoint(
            self.url,
            self.endpoint_name,
            self._serialize(data),
            content_type=self.content_type,
            accept=self.accept,
            target_variant=target_variant,
            token=self.token,
            client=self._client,
            target_model=target_model,
        )
        self.last_variant = result["InvokedProductionVariant"]
        body: bytes = result["Body"]
        if self.accept == "application/json":
            return json.loads(body)
        if self.accept == "application/jsonlines":
            return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        return body.decode()

    def _serialize(self, data: Any) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        if hasattr(data, "to_numpy"):
            data = data.to_numpy()
        rows = np.asarray(data, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if self.content_type == "application/json":
            return json.dumps({"instances": rows.tolist()}).encode()
        buffer = io.StringIO()
        np.savetxt(buffer, rows, delimiter=",", fmt="%.17g")
        return buffer.getvalue().encode()

    def close(self) -> None:
        """Close the connection kept to the server."""
        if self._client is not None:
            self._client.close()
            self._client = None
