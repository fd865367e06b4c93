"""Fixtures for the lake's object-store tests: one Lake per backend, on real storage."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagelab.lake._objects import Lake

LAKE_BACKENDS = ["local", "memory", "s3"]
#: The bucket every ``lake_any`` lake starts with.
LAKE_BUCKET = "data"
_S3_CONTAINER = "lakehouse"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def lake_s3_options() -> Iterator[dict[str, Any]]:
    """s3fs options for a moto S3 server on 127.0.0.1 (offline), with one S3 bucket made."""
    pytest.importorskip("s3fs", reason="s3fs is not installed: pip install 'sagelab[s3]'")
    server_mod = pytest.importorskip(
        "moto.server",
        reason="moto[server] is not installed: pip install 'moto[server]' to run the "
        "lake conformance suite against S3 (s3fs + moto)",
    )
    import boto3

    # The server's request log would drown pytest's output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds).create_bucket(
        Bucket=_S3_CONTAINER
    )
    try:
        yield {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    finally:
        server.stop()


def lake_make(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Lake:
    """A fresh, empty Lake of the given kind; removed again after the test."""
    if kind == "local":
        return Lake(tmp_path / "lake")
    if kind == "memory":
        lake = Lake(f"memory://lake-{uuid.uuid4().hex}")
    else:
        options = request.getfixturevalue("lake_s3_options")
        lake = Lake(f"s3://{_S3_CONTAINER}/{uuid.uuid4().hex}", storage_options=options)
    root = lake.filesystem._strip_protocol(lake.root)

    def cleanup() -> None:
        if lake.filesystem.exists(root):
            lake.filesystem.rm(root, recursive=True)

    request.addfinalizer(cleanup)
    return lake


@pytest.fixture(params=LAKE_BACKENDS)
def lake_kind(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return str(request.param)


@pytest.fixture
def lake_any(lake_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Lake:
    """A lake on each backend in turn, holding the empty bucket ``LAKE_BUCKET``."""
    lake = lake_make(lake_kind, tmp_path, request)
    lake.create_bucket(LAKE_BUCKET)
    return lake


@pytest.fixture
def lake_local(tmp_path: Path) -> Lake:
    """A local lake at ``tmp_path / 'lake'`` holding the empty bucket ``LAKE_BUCKET``."""
    lake = Lake(tmp_path / "lake")
    lake.create_bucket(LAKE_BUCKET)
    return lake
