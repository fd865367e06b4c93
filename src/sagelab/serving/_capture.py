"""Data capture in a server worker: requests and answers kept in the lake, off the request path.

A request that is sampled (:class:`~sagelab.serving._capture_config.CaptureSpec`)
costs one append to an in-memory queue: no encoding, no I/O, no lock. A thread of
the worker drains the queue every ``flush_interval`` seconds (sooner when
``flush_records`` wait) and writes each endpoint variant's records of each hour as
one new object of JSON lines, laid out as SageMaker's data capture is::

    <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<ms>-<uuid>.jsonl

(the UTC hour of the inference; the uuid keeps names apart across workers and
flushes, since an object store has no append). Each line is SageMaker's capture
record: ``captureData`` with ``endpointInput`` and/or ``endpointOutput`` (the
observed content type, the mode, the body as text for CSV and JSON types or
base64 otherwise), ``eventMetadata`` (an event id, the inference time) and
``eventVersion``. Only answered requests (2xx) are captured.

The queue is bounded in records and bytes: when the writer falls behind, new
records are dropped and counted (``CaptureDroppedRecords``) rather than making a
request wait. :meth:`CaptureWriter.close`, called when the worker shuts down,
writes everything still queued.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring as _quote
from typing import TYPE_CHECKING

from sagelab.serving._capture_config import CaptureSpec
from sagelab.serving._codec import media_type

if TYPE_CHECKING:
    from sagelab.lake import Lake

__all__ = ["INFERENCE_ID_HEADER", "CaptureWriter", "capture_record"]

#: The request header whose value a capture record keeps as ``eventMetadata.inferenceId``.
INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"
_log = logging.getLogger("sagelab.serving")

#: (spec, endpoint, variant, epoch seconds, request type, request body, answer type,
#: answer body, inference id)
_Item = tuple[CaptureSpec, str, str, float, str, bytes, str, bytes, str | None]
#: One object to write: (bucket, key, JSON lines, the (endpoint, variant) of each line).
_Group = tuple[str, str, bytes, list[tuple[str, str]]]


class CaptureWriter:
    """One worker's capture queue and the thread that writes it to the lake.

    Args:
        lake: where captures are written.
        flush_interval: seconds between two writes of what is queued.
        flush_records: queued records that wake the writer before the interval ends.
        max_records: the most records queued; beyond, new ones are dropped and counted.
        max_bytes: the most request and answer bytes queued; beyond, likewise.
        on_drop: told ``(endpoint, variant, records)`` whenever records are dropped.
    """

    def __init__(
        self,
        lake: Lake,
        *,
        flush_interval: float = 1.0,
        flush_records: int = 1000,
        max_records: int = 20_000,
        max_bytes: int = 64 * 1024 * 1024,
        on_drop: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.lake = lake
        self.flush_interval, self.flush_records = flush_interval, flush_records
        self.max_records, self.max_bytes = max_records, max_bytes
        self.on_drop = on_drop
        #: Records written, and records dropped, since the writer started.
        self.written = 0
        self.dropped = 0
        # deque.append and popleft are atomic: the request path and the writer need no lock.
        self._queue: deque[_Item] = deque()
        # Each counter has one writer (requests add, the writer thread subtracts).
        self._bytes_in = 0
        self._bytes_out = 0
        self._retry: list[_Group] = []
        self._buckets: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        # Drops are counted by the request path and, rarely, by the writer thread.
        self._drop_lock = threading.Lock()

    # ------------------------------------------------------------------ request path
    def offer(
        self,
        spec: CaptureSpec,
        endpoint: str,
        variant: str,
        request_type: str,
        request: bytes,
        answer_type: str,
        answer: bytes,
        inference_id: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> bool:
        """Queue a sampled request and its answer; True when queued.

        Never blocks and never raises for a full queue: the record is dropped and counted.
        """
        if spec.percentage < 100.0 and draw() * 100.0 >= spec.percentage:
            return False
        if not spec.inputs:
            request = b""
        if not spec.outputs:
            answer = b""
        size = len(request) + len(answer)
        if (
            self._closed
            or len(self._queue) >= self.max_records
            or self._bytes_in - self._bytes_out + size > self.max_bytes
        ):
            self._count_dropped(endpoint, variant, 1)
            return False
        self._bytes_in += size
        self._queue.append(
            (
                spec,
                endpoint,
                variant,
                time.time(),
                request_type,
                request,
                answer_type,
                answer,
                inference_id,
            )
        )
        if len(self._queue) == self.flush_records:
            self._wake.set()
        return True

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking records and write everything queued; safe to call more than once."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _log.error("The data capture writer did not finish within %.0f s.", timeout)
                return
        self.flush(final=True)  # anything offered while the thread made its last write

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()
        self.flush(final=True)

    # ------------------------------------------------------------------ writing
    def flush(self, *, final: bool = False) -> int:
        """Write what is queued (and what failed before) as new lake objects; return the
        records written. With ``final``, records that still cannot be written are dropped
        and counted."""
        with self._write_lock:
            groups = self._retry
            self._retry = []
            groups += self._drain()
            written = 0
            for bucket, key, data, owners in groups:
                try:
                    self._put(bucket, key, data)
                except Exception:
                    _log.exception(
                        "Could not write %d captured records to s3://%s/%s",
                        len(owners),
                        bucket,
                        key,
                    )
                    self._retry.append((bucket, key, data, owners))
                    continue
                written += len(owners)
            self._bound_retries(final)
            self.written += written
            return written

    def _drain(self) -> list[_Group]:
        n = len(self._queue)
        if not n:
            return []
        files: dict[tuple[str, str], tuple[str, list[bytes], list[tuple[str, str]]]] = {}
        hours: dict[int, str] = {}
        stamps: dict[int, str] = {}
        event_ids = _event_ids(n)
        freed = 0
        for i in range(n):
            if i % 64 == 63:  # let the event loop answer between slices of a large batch
                time.sleep(0)
            item = self._queue.popleft()
            spec, endpoint, variant, at = item[0], item[1], item[2], item[3]
            freed += len(item[5]) + len(item[7])
            hour = hours.get(int(at) // 3600)
            if hour is None:
                hour = hours[int(at) // 3600] = time.strftime("%Y/%m/%d/%H", time.gmtime(at))
            folder = "/".join(p for p in (spec.prefix, endpoint, variant, hour) if p)
            entry = files.get((spec.bucket, folder))
            if entry is None:
                t = time.gmtime(at)
                name = f"{t.tm_min:02d}-{t.tm_sec:02d}-{int(at * 1000) % 1000:03d}-{uuid.uuid4()}"
                entry = files[(spec.bucket, folder)] = (f"{folder}/{name}.jsonl", [], [])
            second = int(at)
            stamp = stamps.get(second)
            if stamp is None:
                stamp = stamps[second] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            entry[1].append(capture_record(item, stamp, next(event_ids)))
            entry[2].append((endpoint, variant))
        self._bytes_out += freed
        return [
            (bucket, key, b"".join(lines), owners)
            for (bucket, _), (key, lines, owners) in files.items()
        ]

    def _put(self, bucket: str, key: str, data: bytes) -> None:
        if bucket not in self._buckets:
            self.lake.create_bucket(bucket, exist_ok=True)
            self._buckets.add(bucket)
        self.lake.put(bucket, key, data)

    def _bound_retries(self, final: bool) -> None:
        kept: list[_Group] = []
        total = 0
        for group in reversed(self._retry):  # the newest are kept
            if final or total + len(group[3]) > self.max_records:
                for endpoint, variant in group[3]:
                    self._count_dropped(endpoint, variant, 1)
                continue
            total += len(group[3])
            kept.append(group)
        self._retry = kept[::-1]

    def _count_dropped(self, endpoint: str, variant: str, n: int) -> None:
        with self._drop_lock:
            self.dropped += n
            if self.on_drop is not None:
                self.on_drop(endpoint, variant, n)


def capture_record(item: _Item, stamp: str | None = None, event_id: str | None = None) -> bytes:
    """One queued request as a line of SageMaker's capture format (UTF-8, ending in ``\\n``).

    Args:
        item: the queued request.
        stamp: its inference time as ``yyyy-mm-ddThh:mm:ssZ``, when known already.
        event_id: its event's UUID (default: a new one).
    """
    # Written by hand around the C string encoder: this runs for every captured request,
    # and json.dumps of the nested dictionaries costs several times more.
    spec, _, _, at, request_type, request, answer_type, answer, inference_id = item
    parts = []
    if spec.inputs:
        parts.append('"endpointInput":' + _payload("INPUT", request_type, request, spec))
    if spec.outputs:
        parts.append('"endpointOutput":' + _payload("OUTPUT", answer_type, answer, spec))
    stamp = stamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    meta = f'"eventId":"{event_id or uuid.uuid4()}","inferenceTime":"{stamp}"'
    if inference_id:
        meta += f',"inferenceId":{_quote(inference_id)}'
    line = (
        f'{{"captureData":{{{",".join(parts)}}},"eventMetadata":{{{meta}}},"eventVersion":"0"}}\n'
    )
    return line.encode()


def _event_ids(n: int) -> Iterator[str]:
    """``n`` random (version 4) UUIDs from one read of the system's random source: a
    ``uuid4()`` per record would cost more than the rest of its line."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])  # RFC 4122 variant
    text = raw.hex()
    for i in range(0, 32 * n, 32):
        h = text[i : i + 32]
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _payload(mode: str, content_type: str, body: bytes, spec: CaptureSpec) -> str:
    kind = media_type(content_type)
    encoding = "CSV" if kind in spec.csv_types else "JSON" if kind in spec.json_types else ""
    text = ""
    if encoding:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:  # declared as text, but is not: keep the bytes
            encoding = ""
    if not encoding:
        encoding, text = "BASE64", base64.b64encode(body).decode("ascii")
    return (
        f'{{"observedContentType":{_quote(content_type)},"mode":"{mode}",'
        f'"data":{_quote(text)},"encoding":"{encoding}"}}'
    )
