"""Rejected records: what could not be read, kept as JSON lines like Firehose's error output.

Each rejected record becomes one JSON object::

    {"source": "data/events.jsonl", "line": 17, "reason": "not valid JSON: ...",
     "raw": "{\\"user\\": ", "ingested_at": "2024-05-01T12:00:00+00:00"}

``raw`` is the record's text as it was in the source. When its bytes are not
valid UTF-8, ``raw`` shows them decoded with replacement characters and
``raw_base64`` carries the exact bytes. Records of a JSON array file have no
line of their own: ``line`` is null there and ``element`` gives the 1-based
position in the array.
"""

from __future__ import annotations

import base64
import json
from typing import Any, BinaryIO

__all__ = ["RejectLog", "describe_bytes"]


def describe_bytes(raw: bytes) -> dict[str, Any]:
    """The ``raw`` fields of a reject record for ``raw`` bytes (``raw_base64`` when not UTF-8)."""
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "raw": raw.decode("utf-8", errors="replace"),
            "raw_base64": base64.b64encode(raw).decode("ascii"),
        }


class RejectLog:
    """Rejected records of one ingestion run, streamed to a local JSON-lines file.

    Args:
        fh: a binary file to write the records to (the caller publishes it).
        ingested_at: the run's timestamp (ISO 8601), repeated in every record.
    """

    def __init__(self, fh: BinaryIO, ingested_at: str) -> None:
        self._fh = fh
        self._ingested_at = ingested_at
        self.count = 0

    def add(
        self,
        source: str,
        reason: str,
        *,
        line: int | None = None,
        raw: bytes | str | None = None,
        element: int | None = None,
    ) -> None:
        """Record one rejected record."""
        record: dict[str, Any] = {"source": source, "line": line}
        if element is not None:
            record["element"] = element
        record["reason"] = reason
        if isinstance(raw, bytes):
            record.update(describe_bytes(raw))
        else:
            record["raw"] = raw
        record["ingested_at"] = self._ingested_at
        self._fh.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self.count += 1
