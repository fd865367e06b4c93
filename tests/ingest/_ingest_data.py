"""Helpers for the ingestion tests: writing sources, reading reject logs back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagelab.lake import Lake


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_rejects(lake: Lake, error_location: str) -> list[dict[str, Any]]:
    """Every reject record under an error location."""
    bucket, prefix = lake.parse_uri(error_location)
    out: list[dict[str, Any]] = []
    for key in lake.list(bucket, prefix).keys:
        out.extend(json.loads(line) for line in lake.get(bucket, key).decode().splitlines())
    return out
