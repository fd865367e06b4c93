"""Data capture's configuration: SageMaker's ``DataCaptureConfig``, checked and stored.

An endpoint config may carry a data capture config (under
``EndpointConfig.options["DataCaptureConfig"]``, in the shape of SageMaker's
CreateEndpointConfig), which the endpoint takes over when the config is deployed.
Server workers then capture that share of the endpoint's requests and answers to
the lake (:mod:`sagelab.serving._capture`). :class:`DataCaptureConfig` is the SDK's
way to write one, with the SageMaker Python SDK's argument names; the service takes
either that or the API's dictionary, and :func:`check_data_capture` turns both into
the one stored shape, or refuses with one message per problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelab.errors import InvalidInput, closest
from sagelab.lake import Lake

__all__ = [
    "DATA_CAPTURE_KEY",
    "DEFAULT_CAPTURE_BUCKET",
    "CaptureSpec",
    "DataCaptureConfig",
    "capture_spec",
    "capture_summary",
    "check_data_capture",
]

#: Where a config's and an endpoint's ``options`` keep it.
DATA_CAPTURE_KEY = "DataCaptureConfig"
#: The bucket captures go to when no DestinationS3Uri is given.
DEFAULT_CAPTURE_BUCKET = "data-capture"
#: Content types captured as text when no CaptureContentTypeHeader says otherwise (the
#: SageMaker SDK's defaults, and the JSON lines sagelab's endpoints also take).
DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json", "application/jsonlines")
_FIELDS = (
    "EnableCapture",
    "InitialSamplingPercentage",
    "DestinationS3Uri",
    "CaptureOptions",
    "CaptureContentTypeHeader",
)
_HEADER_FIELDS = ("CsvContentTypes", "JsonContentTypes")
#: Capture modes by the names the API, the SDK and the CLI use for them.
_MODES = {
    "input": ("Input",),
    "request": ("Input",),
    "output": ("Output",),
    "response": ("Output",),
    "inputandoutput": ("Input", "Output"),
}
_CONTENT_TYPE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*/[a-zA-Z0-9](-*[a-zA-Z0-9.+])*")
_MAX_TYPES = 10


@dataclass(frozen=True)
class DataCaptureConfig:
    """What share of an endpoint's requests and answers to keep, and where.

    The SageMaker Python SDK's ``DataCaptureConfig``; pass it to
    ``EndpointService.deploy(..., data_capture=...)``.

    Attributes:
        enable_capture: whether to capture at all (False turns capture off on an update).
        sampling_percentage: the whole percentage of requests captured, 0 to 100.
        destination_s3_uri: an ``s3://bucket/prefix`` of the lake (default
            ``s3://data-capture/``); files land under ``<endpoint>/<variant>/yyyy/mm/dd/hh/``.
        capture_options: ``REQUEST`` and/or ``RESPONSE`` (or the API's ``Input``, ``Output``).
        csv_content_types: content types captured as CSV text (default ``text/csv``).
        json_content_types: content types captured as JSON text (default
            ``application/json`` and ``application/jsonlines``); others are base64.
    """

    enable_capture: bool = True
    sampling_percentage: int = 20
    destination_s3_uri: str | None = None
    capture_options: Sequence[str] = ("REQUEST", "RESPONSE")
    csv_content_types: Sequence[str] | None = None
    json_content_types: Sequence[str] | None = None

    def to_request_dict(self) -> dict[str, Any]:
        """The config in the shape of SageMaker's CreateEndpointConfig (unchecked)."""
        out: dict[str, Any] = {
            "EnableCapture": self.enable_capture,
            "InitialSamplingPercentage": self.sampling_percentage,
            "CaptureOptions": [{"CaptureMode": m} for m in self.capture_options],
        }
        if self.destination_s3_uri is not None:
            out["DestinationS3Uri"] = self.destination_s3_uri
        header: dict[str, Any] = {}
        if self.csv_content_types is not None:
            header["CsvContentTypes"] = list(self.csv_content_types)
        if self.json_content_types is not None:
            header["JsonContentTypes"] = list(self.json_content_types)
        if header:
            out["CaptureContentTypeHeader"] = header
        return out


def check_data_capture(value: DataCaptureConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The stored shape of a data capture config, checked.

    Missing ``EnableCapture`` means True and a missing ``DestinationS3Uri`` the
    ``data-capture`` bucket; capture modes are spelled ``Input``/``Output``.

    Raises:
        InvalidInput: one message naming every problem (an unknown field, a percentage
            outside 0..100, a destination that is not ``s3://`` of the lake, no capture
            option, a malformed content type).
    """
    if isinstance(value, DataCaptureConfig):
        value = value.to_request_dict()
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "A data capture config is a DataCaptureConfig or a mapping with SageMaker's "
            f"fields ({', '.join(_FIELDS)}); got {type(value).__name__}."
        )
    problems = [
        f"DataCaptureConfig has no field {k!r}.{closest(str(k), _FIELDS)} "
        f"Its fields: {', '.join(_FIELDS)}."
        for k in value
        if k not in _FIELDS
    ]
    enable = value.get("EnableCapture", True)
    if not isinstance(enable, bool):
        problems.append(f"DataCaptureConfig.EnableCapture must be true or false; got {enable!r}.")
    percentage = value.get("InitialSamplingPercentage")
    if not (
        isinstance(percentage, int) and not isinstance(percentage, bool) and 0 <= percentage <= 100
    ):
        problems.append(
            "DataCaptureConfig.InitialSamplingPercentage must be a whole number from 0 to 100 "
            f"(the percentage of requests captured); got {percentage!r}."
        )
    destination = value.get("DestinationS3Uri")
    if destination is None:
        destination = f"s3://{DEFAULT_CAPTURE_BUCKET}/"
    else:
        problems += _destination_problems(destination)
    modes, mode_problems = _modes(value.get("CaptureOptions"))
    problems += mode_problems
    header, header_problems = _header(value.get("CaptureContentTypeHeader"))
    problems += header_problems
    if problems:
        raise InvalidInput(" ".join(problems))
    out: dict[str, Any] = {
        "EnableCapture": enable,
        "InitialSamplingPercentage": percentage,
        "DestinationS3Uri": destination,
        "CaptureOptions": [{"CaptureMode": m} for m in modes],
    }
    if header:
        out["CaptureContentTypeHeader"] = header
    return out


def _destination_problems(destination: Any) -> list[str]:
    if not isinstance(destination, str) or not destination.startswith("s3://"):
        return [
            "DataCaptureConfig.DestinationS3Uri must be an s3://bucket/prefix location of "
            f"the lake, e.g. 's3://{DEFAULT_CAPTURE_BUCKET}/churn/'; got {destination!r}."
        ]
    if len(destination) > 512:
        return [
            f"DataCaptureConfig.DestinationS3Uri is {len(destination)} characters; at most 512."
        ]
    try:
        Lake.parse_uri(destination)
    except InvalidInput as exc:
        return [f"DataCaptureConfig.DestinationS3Uri {destination!r} is not usable: {exc}"]
    return []


def _modes(options: Any) -> tuple[list[str], list[str]]:
    where = "DataCaptureConfig.CaptureOptions"
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
        return [], [
            f"{where} must list what to capture, e.g. [{{'CaptureMode': 'Input'}}, "
            f"{{'CaptureMode': 'Output'}}]; got {options!r}."
        ]
    if len(options) > 32:
        return [], [f"{where} holds {len(options)} options; at most 32."]
    found: set[str] = set()
    problems = []
    for option in options:
        mode = option.get("CaptureMode") if isinstance(option, Mapping) else option
        known = _MODES.get(mode.lower()) if isinstance(mode, str) else None
        if known is None:
            problems.append(
                f"{where}: the capture mode {mode!r} is not one of Input, Output, "
                "InputAndOutput (the SDK's REQUEST and RESPONSE work too)."
                f"{closest(str(mode), ('Input', 'Output', 'InputAndOutput'))}"
            )
        else:
            found.update(known)
    return [m for m in ("Input", "Output") if m in found], problems


def _header(header: Any) -> tuple[dict[str, list[str]], list[str]]:
    where = "DataCaptureConfig.CaptureContentTypeHeader"
    if header is None:
        return {}, []
    if not isinstance(header, Mapping):
        return {}, [
            f"{where} must be a mapping with CsvContentTypes and/or JsonContentTypes; "
            f"got {header!r}."
        ]
    problems = [
        f"{where} has no field {k!r}.{closest(str(k), _HEADER_FIELDS)} "
        f"Its fields: {', '.join(_HEADER_FIELDS)}."
        for k in header
        if k not in _HEADER_FIELDS
    ]
    out: dict[str, list[str]] = {}
    for field in _HEADER_FIELDS:
        kinds = header.get(field)
        if kinds is None:
            continue
        if (
            isinstance(kinds, (str, bytes))
            or not isinstance(kinds, Sequence)
            or not 1 <= len(kinds) <= _MAX_TYPES
        ):
            problems.append(
                f"{where}.{field} must list 1 to {_MAX_TYPES} content types, e.g. "
                f"['text/csv']; got {kinds!r}."
            )
            continue
        bad = [k for k in kinds if not (isinstance(k, str) and _CONTENT_TYPE.fullmatch(k))]
        if bad:
            problems.append(
                f"{where}.{field}: {', '.join(repr(b) for b in bad)} "
                f"{'is not a content type' if len(bad) == 1 else 'are not content types'} "
                "of the form type/subtype, e.g. 'text/csv'."
            )
            continue
        out[field] = list(kinds)
    both = {k.lower() for k in out.get("CsvContentTypes", [])} & {
        k.lower() for k in out.get("JsonContentTypes", [])
    }
    if both:
        problems.append(
            f"{where}: {', '.join(sorted(both))} cannot be both a CSV and a JSON content type."
        )
    return out, problems


@dataclass(frozen=True, slots=True)
class CaptureSpec:
    """A stored config as a server worker applies it to each request.

    Attributes:
        percentage: the share of requests captured, 0 to 100.
        bucket: the lake bucket captures go to.
        prefix: the key prefix under it ('' or ending without '/').
        inputs: whether request bodies are captured.
        outputs: whether answers are captured.
        csv_types: media types (lowercase) captured as CSV text.
        json_types: media types (lowercase) captured as JSON text.
    """

    percentage: float
    bucket: str
    prefix: str
    inputs: bool
    outputs: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]


def capture_spec(config: Mapping[str, Any] | None) -> CaptureSpec | None:
    """What a worker applies for a stored config; None when nothing is to be captured.

    Raises:
        InvalidInput: a stored destination that is no longer a valid lake location.
    """
    if not config or not config.get("EnableCapture", True):
        return None
    percentage = float(config.get("InitialSamplingPercentage", 0))
    if percentage <= 0:
        return None
    bucket, prefix = Lake.parse_uri(str(config["DestinationS3Uri"]))
    modes = {o.get("CaptureMode") for o in config.get("CaptureOptions", [])}
    header = config.get("CaptureContentTypeHeader") or {}
    csv_types = header.get("CsvContentTypes", DEFAULT_CSV_TYPES)
    json_types = header.get("JsonContentTypes", DEFAULT_JSON_TYPES)
    return CaptureSpec(
        percentage=min(percentage, 100.0),
        bucket=bucket,
        prefix=prefix.strip("/"),
        inputs="Input" in modes,
        outputs="Output" in modes,
        csv_types=frozenset(k.lower() for k in csv_types),
        json_types=frozenset(k.lower() for k in json_types),
    )


def capture_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    """SageMaker's DescribeEndpoint ``DataCaptureConfig`` summary, with the capture modes."""
    enabled = bool(config.get("EnableCapture", True))
    out: dict[str, Any] = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": config.get("InitialSamplingPercentage"),
        "DestinationS3Uri": config.get("DestinationS3Uri"),
        "CaptureOptions": list(config.get("CaptureOptions", [])),
    }
    if config.get("CaptureContentTypeHeader"):
        out["CaptureContentTypeHeader"] = dict(config["CaptureContentTypeHeader"])
    return out
