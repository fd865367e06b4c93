"""Data capture: sampled requests and answers written to the lake in SageMaker's layout."""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from _endpoint_env import Served, csv_line, free_port, served_env, start_server, stop_server

from sagelab.cli import main
from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Lake
from sagelab.serving import (
    DEFAULT_CAPTURE_BUCKET,
    INFERENCE_ID_HEADER,
    DataCaptureConfig,
    VariantSpec,
)
from sagelab.serving._capture import CaptureWriter
from sagelab.serving._capture_config import capture_spec, check_data_capture
from sagelab.serving._metrics import Counters, deltas
from sagelab.store import Endpoint, EndpointConfig

BUCKET = "captures"
FULL_REQUESTS = 200
SAMPLED_REQUESTS = 400
SAMPLED_PERCENT = 30
OTHER_REQUESTS = 40
KEY = re.compile(
    r"^(?P<prefix>[a-z]+)/(?P<endpoint>[a-z-]+)/(?P<variant>[a-zA-Z]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"\d{2}-\d{2}-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$"
)


@dataclass
class Sent:
    """One answered request: what went in and what came back."""

    content_type: str
    body: bytes
    answer_type: str
    answer: bytes
    variant: str


@dataclass
class Captured:
    """The traffic sent to a server that then stopped cleanly, and what the lake holds."""

    served: Served
    sent: dict[str, Sent]
    refused: list[str]
    start: datetime
    end: datetime
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def records(self, endpoint: str) -> list[tuple[str, dict[str, Any]]]:
        """The capture records under ``endpoint``'s folder, with their object keys."""
        out = []
        for key, rows in self.objects.items():
            m = KEY.match(key)
            if m is not None and m["endpoint"] == endpoint:
                out += [(key, r) for r in rows]
        return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_env(tmp_path_factory.mktemp("capture"))


def _request(i: int, row: Any) -> tuple[str, bytes, str]:
    """Request ``i`` as CSV, JSON or JSON lines in turn: content type, body, accept."""
    kind = ("text/csv", "application/json", "application/jsonlines")[i % 3]
    if kind == "text/csv":
        body = csv_line(row)
    elif kind == "application/json":
        body = json.dumps({"instances": [row.tolist()]})
    else:
        body = json.dumps({"features": row.tolist()})
    return kind, body.encode(), kind


@pytest.fixture(scope="module")
def captured(served: Served) -> Captured:
    """Four endpoints (full capture over two variants, 30 % of inputs, capture switched
    off, no capture) loaded through their own server, which is then stopped with SIGTERM."""
    endpoints = served.session.endpoints
    endpoints.deploy(
        "cap-full",
        [VariantSpec("blue", served.job_a, weight=1), VariantSpec("green", served.job_b, weight=1)],
        data_capture={
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/full/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            # JSON lines are then neither CSV nor JSON: captured as base64.
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        },
    )
    endpoints.deploy(
        "cap-sampled",
        [VariantSpec("AllTraffic", served.job_a)],
        data_capture=DataCaptureConfig(
            sampling_percentage=SAMPLED_PERCENT,
            destination_s3_uri=f"s3://{BUCKET}/sampled",
            capture_options=["REQUEST"],
        ),
    )
    endpoints.deploy(
        "cap-off",
        [VariantSpec("AllTraffic", served.job_a)],
        data_capture=DataCaptureConfig(
            enable_capture=False,
            sampling_percentage=100,
            destination_s3_uri=f"s3://{BUCKET}/off/",
        ),
    )
    endpoints.deploy("cap-none", [VariantSpec("AllTraffic", served.job_a)])
    port = free_port()
    proc = start_server(served.home, port, "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    sent: dict[str, Sent] = {}
    refused: list[str] = []
    start = datetime.now(UTC).replace(microsecond=0)
    try:
        with httpx.Client(timeout=60) as client:

            def post(endpoint: str, ident: str, kind: str, body: bytes, accept: str) -> None:
                headers = {"Content-Type": kind, "Accept": accept, INFERENCE_ID_HEADER: ident}
                if len(sent) % 2:  # a fresh connection: the workers share the traffic
                    headers["Connection"] = "close"
                answer = client.post(
                    f"{url}/endpoints/{endpoint}/invocations", content=body, headers=headers
                )
                if answer.status_code != 200:
                    refused.append(ident)
                    return
                sent[ident] = Sent(
                    kind,
                    body,
                    answer.headers["content-type"],
                    answer.content,
                    answer.headers["x-amzn-invoked-production-variant"],
                )

            rows = served.rows
            for i in range(FULL_REQUESTS):
                post("cap-full", f"full-{i}", *_request(i, rows[i % len(rows)]))
            for i in range(5):  # refused (too few features): nothing to capture
                post("cap-full", f"bad-{i}", "text/csv", b"1,2,3", "text/csv")
            for i in range(SAMPLED_REQUESTS):
                post("cap-sampled", f"sampled-{i}", *_request(0, rows[i % len(rows)]))
            for name in ("cap-off", "cap-none"):
                for i in range(OTHER_REQUESTS):
                    post(name, f"{name}-{i}", *_request(0, rows[i % len(rows)]))
    finally:
        stop_server(proc)
    end = datetime.now(UTC)
    out = Captured(served, sent, refused, start, end)
    lake = served.session.lake
    for bucket in lake.list_buckets():
        for obj in lake.list(bucket).objects:
            if bucket == BUCKET:
                text = lake.get(bucket, obj.key).decode()
                assert text.endswith("\n"), obj.key
                out.objects[obj.key] = [json.loads(line) for line in text.splitlines()]
            else:
                out.objects[f"{bucket}:{obj.key}"] = []
    return out


def test_full_capture_keeps_every_answered_request_exactly_once(captured: Captured) -> None:
    records = captured.records("cap-full")
    ids = Counter(r["eventMetadata"]["inferenceId"] for _, r in records)
    expected = {i for i in captured.sent if i.startswith("full-")}
    assert len(expected) == FULL_REQUESTS
    assert len(captured.refused) == 5
    assert set(ids) == expected  # the refused requests are not captured
    assert max(ids.values()) == 1
    assert len({r["eventMetadata"]["eventId"] for _, r in records}) == len(records)
    encodings: Counter[tuple[str, str]] = Counter()
    for _, record in records:
        assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
        assert record["eventVersion"] == "0"
        uuid.UUID(record["eventMetadata"]["eventId"])
        sent = captured.sent[record["eventMetadata"]["inferenceId"]]
        given, answered = (
            record["captureData"]["endpointInput"],
            record["captureData"]["endpointOutput"],
        )
        assert given["mode"] == "INPUT" and answered["mode"] == "OUTPUT"
        assert given["observedContentType"] == sent.content_type
        assert answered["observedContentType"] == sent.answer_type
        for part, raw in ((given, sent.body), (answered, sent.answer)):
            if part["encoding"] == "BASE64":
                assert base64.b64decode(part["data"]) == raw
            else:
                assert part["data"] == raw.decode()
        encodings[(sent.content_type, given["encoding"])] += 1
        encodings[(sent.answer_type, answered["encoding"])] += 1
    assert set(encodings) == {
        ("text/csv", "CSV"),
        ("application/json", "JSON"),
        ("application/jsonlines", "BASE64"),
    }


def test_capture_files_are_laid_out_by_endpoint_variant_and_hour(captured: Captured) -> None:
    records = captured.records("cap-full")
    variants: Counter[str] = Counter()
    for key, record in records:
        m = KEY.match(key)
        assert m is not None and m["prefix"] == "full"
        sent = captured.sent[record["eventMetadata"]["inferenceId"]]
        assert m["variant"] == sent.variant
        variants[m["variant"]] += 1
        at = datetime.strptime(record["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
        at = at.replace(tzinfo=UTC)
        assert captured.start <= at <= captured.end
        assert (m["y"], m["m"], m["d"], m["h"]) == (
            f"{at.year:04d}",
            f"{at.month:02d}",
            f"{at.day:02d}",
            f"{at.hour:02d}",
        )
    assert set(variants) == {"blue", "green"}
    # Nothing but capture files under the bucket (no temporary or stray objects).
    assert all(KEY.match(k) for k in captured.objects if ":" not in k)


def test_sampled_capture_lands_within_a_binomial_bound(captured: Captured) -> None:
    records = captured.records("cap-sampled")
    n, p = SAMPLED_REQUESTS, SAMPLED_PERCENT / 100
    assert sum(i.startswith("sampled-") for i in captured.sent) == n
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    # Five standard deviations: a correct sampler fails this about once in two million runs.
    assert abs(len(records) - mean) <= 5 * sd, (len(records), mean, sd)
    ids = [r["eventMetadata"]["inferenceId"] for _, r in records]
    assert len(set(ids)) == len(ids)
    for _, record in records:  # inputs only
        assert set(record["captureData"]) == {"endpointInput"}
        sent = captured.sent[record["eventMetadata"]["inferenceId"]]
        assert record["captureData"]["endpointInput"]["data"] == sent.body.decode()


def test_disabled_capture_writes_nothing(captured: Captured) -> None:
    assert captured.records("cap-off") == []
    assert captured.records("cap-none") == []
    assert not [k for k in captured.objects if "cap-off" in k or "cap-none" in k]
    assert sum(i.startswith(("cap-off", "cap-none")) for i in captured.sent) == 2 * OTHER_REQUESTS


def test_describe_and_updates_keep_the_capture_and_other_options(served: Served) -> None:
    endpoints = served.session.endpoints
    d = endpoints.deploy("cap-desc", [VariantSpec("AllTraffic", served.job_a)])
    assert "DataCaptureConfig" not in d
    d = endpoints.update_data_capture("cap-desc", DataCaptureConfig(sampling_percentage=30))
    assert d["DataCaptureConfig"] == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 30,
        "DestinationS3Uri": f"s3://{DEFAULT_CAPTURE_BUCKET}/",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    assert served.session.lake.bucket_exists(DEFAULT_CAPTURE_BUCKET)
    with served.session.store.session() as s:  # another feature's option, beside ours
        row = s.get(Endpoint, "cap-desc")
        assert row is not None
        row.options = {**row.options, "SomethingElse": {"Kept": True}}
    d = endpoints.deploy("cap-desc", [VariantSpec("AllTraffic", served.job_b)], update=True)
    assert d["DataCaptureConfig"]["CurrentSamplingPercentage"] == 30  # an update keeps it
    model = d["ProductionVariants"][0]["Model"]
    with served.session.store.read() as s:
        row = s.get(Endpoint, "cap-desc")
        assert row is not None
        assert row.options["SomethingElse"] == {"Kept": True}
        config = s.get(EndpointConfig, row.config_name)
        assert config is not None
        assert config.options["DataCaptureConfig"] == row.options["DataCaptureConfig"]
    d = endpoints.update_data_capture("cap-desc", DataCaptureConfig(enable_capture=False))
    assert d["DataCaptureConfig"]["CaptureStatus"] == "Stopped"
    assert d["ProductionVariants"][0]["Model"] == model  # the variants stay as they were


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (DataCaptureConfig(sampling_percentage=150), "InitialSamplingPercentage"),
        (DataCaptureConfig(sampling_percentage=-1), "from 0 to 100"),
        (DataCaptureConfig(destination_s3_uri="local/captures"), "DestinationS3Uri"),
        (DataCaptureConfig(destination_s3_uri="https://example.com/x"), "s3://"),
        (DataCaptureConfig(destination_s3_uri="s3://Bad_Bucket/x"), "bucket name"),
        (DataCaptureConfig(destination_s3_uri="s3://captures/../x"), "DestinationS3Uri"),
        (DataCaptureConfig(capture_options=()), "CaptureOptions"),
        (DataCaptureConfig(capture_options=("Inptu",)), "Did you mean 'Input'"),
        (DataCaptureConfig(json_content_types=["json"]), "type/subtype"),
        (
            DataCaptureConfig(csv_content_types=["text/csv"], json_content_types=["TEXT/CSV"]),
            "both",
        ),
        ({"InitialSamplingPercentage": 10, "CaptureOptions": ["Input"], "Sampling": 1}, "Sampling"),
        ({"CaptureOptions": ["Input"]}, "InitialSamplingPercentage"),
        ({"InitialSamplingPercentage": True, "CaptureOptions": ["Input"]}, "whole number"),
        ("everything", "mapping"),
    ],
)
def test_bad_capture_configs_are_refused_before_anything_changes(
    served: Served, config: Any, words: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(words)):
        served.session.endpoints.deploy(
            "cap-bad", [VariantSpec("AllTraffic", served.job_a)], data_capture=config
        )
    with pytest.raises(NotFound):
        served.session.endpoints.describe("cap-bad")


def test_capture_cli(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["deploy", served.job_a, "--endpoint", "cap-cli", "--data-capture"]
    assert main([*args, "150"]) == 1
    assert "InitialSamplingPercentage" in capsys.readouterr().err
    assert main([*args, "20", "--capture", ""]) == 1
    assert "CaptureOptions" in capsys.readouterr().err
    destination = "s3://captures-cli/churn/"
    extra = ["--capture", "input", "--capture-destination", destination, "--json"]
    assert main([*args, "25", *extra]) == 0
    capture = json.loads(capsys.readouterr().out)["DataCaptureConfig"]
    assert capture["CurrentSamplingPercentage"] == 25
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}]
    assert capture["DestinationS3Uri"] == destination
    assert served.session.lake.bucket_exists("captures-cli")
    assert main(["endpoints", "data-capture", "cap-cli", "--percent", "5", "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["DataCaptureConfig"]["CurrentSamplingPercentage"] == 5
    )
    assert main(["endpoints", "data-capture", "cap-cli", "--off", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["DataCaptureConfig"]["CaptureStatus"] == "Stopped"
    assert main(["endpoints", "data-capture", "cap-cli"]) == 1
    assert "--percent" in capsys.readouterr().err


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    spec = capture_spec(check_data_capture(DataCaptureConfig(sampling_percentage=100)))
    assert spec is not None
    counters = Counters()
    counters.served("e", "v", 1.0, 1.0)  # the request path counts before it captures
    writer = CaptureWriter(lake, max_records=5, on_drop=counters.capture_dropped)
    offered = [
        writer.offer(spec, "e", "v", "text/csv", f"{i},1".encode(), "text/csv", b"0.5")
        for i in range(8)
    ]
    assert offered == [True] * 5 + [False] * 3
    assert writer.dropped == 3
    writer.close()  # never started: close writes what is queued
    keys = lake.list(DEFAULT_CAPTURE_BUCKET).keys
    assert len(keys) == 1 and keys[0].startswith("e/v/")
    lines = lake.get(DEFAULT_CAPTURE_BUCKET, keys[0]).decode().splitlines()
    assert [json.loads(x)["captureData"]["endpointInput"]["data"] for x in lines] == [
        f"{i},1" for i in range(5)
    ]
    assert writer.written == 5
    assert not writer.offer(spec, "e", "v", "text/csv", b"9,1", "text/csv", b"0.5")  # closed
    points = deltas({}, {("e", "v"): counters.totals[("e", "v")]}, {}, datetime.now(UTC))
    dropped = [p for p in points if p.name == "CaptureDroppedRecords"]
    assert [p.value for p in dropped] == [4.0]


def test_each_flush_is_a_new_object_and_bytes_are_bounded(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    spec = capture_spec(
        check_data_capture(
            {
                "InitialSamplingPercentage": 100,
                "CaptureOptions": ["InputAndOutput"],
                "DestinationS3Uri": "s3://bounded/p/",
            }
        )
    )
    assert spec is not None
    writer = CaptureWriter(lake, max_bytes=1000)
    assert writer.offer(spec, "e", "v", "application/octet-stream", b"\x00" * 600, "text/csv", b"1")
    assert not writer.offer(spec, "e", "v", "text/csv", b"x" * 600, "text/csv", b"1")
    assert writer.flush() == 1
    # Written: the bytes are free again.
    assert writer.offer(spec, "e", "v", "text/csv", b"x" * 600, "text/csv", b"1")
    assert writer.flush() == 1
    assert writer.flush() == 0
    keys = lake.list("bounded").keys
    assert len(keys) == 2 and all(KEY.match(k) and k.startswith("p/e/v/") for k in keys)
    first = [
        json.loads(line)
        for k in keys
        for line in lake.get("bounded", k).decode().splitlines()
        if "BASE64" in line
    ]
    assert len(first) == 1
    assert base64.b64decode(first[0]["captureData"]["endpointInput"]["data"]) == b"\x00" * 600
