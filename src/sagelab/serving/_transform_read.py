"""What a transform reads: the input objects of a SOURCE, cut into bounded blocks of whole records.

A file SOURCE is a lake location (one object, or every object under a prefix,
as SageMaker's ``S3Prefix``) or a local file, folder or glob; each object gets
an output of its own. Objects are read as streams and cut at line ends into
blocks of at most MaxPayloadInMB, so memory stays bounded whatever their size.
An uncompressed object that is a file on this machine is only scanned for its
line ends: each of its blocks is a :class:`Span` (where its bytes are), and each
worker reads its own block, so the bytes do not travel through the job's process.
A catalog table or SQL query is one input, streamed as Arrow batches cut to
the same bound.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Lake, SqlEngine, resolve_location
from sagelab.serving._transform_spec import CSV, JSON, JSONLINES, TransformSpec

__all__ = [
    "Block",
    "InputObject",
    "Oversized",
    "Span",
    "arrow_blocks",
    "count_lines",
    "file_blocks",
    "list_inputs",
    "span_blocks",
]

#: How many characters of an oversized record the error file keeps.
_SHOWN = 200
#: The line end, as a byte.
_NL = ord("\n")
#: Rows per Arrow batch read from a table or query before cutting to the payload.
_ARROW_BATCH_ROWS = 8192


@dataclass(frozen=True)
class InputObject:
    """One input: a file-like object, or the rows of a table or query.

    Attributes:
        name: its name relative to the SOURCE (the output is ``<name>.out``).
        uri: where it is, as the user would write it.
        size: its size in bytes when known.
        kind: ``file`` or ``rows`` (a table or query).
        content_type: how its records are written.
        gzip: whether it is gzip-compressed.
        bucket, key: set for lake objects; path and fs for other files.
        local: the object's path on this machine, when it is a local file (the lake's
            local folder, or a local path).
    """

    name: str
    uri: str
    size: int | None
    kind: str
    content_type: str
    gzip: bool = False
    bucket: str | None = None
    key: str | None = None
    path: str | None = None
    fs: Any = None
    local: str | None = None


@dataclass(frozen=True)
class Span:
    """A block's bytes where they lie: ``length`` bytes at ``offset`` of a local file."""

    path: str
    offset: int
    length: int

    def read(self) -> bytes:
        """The bytes, read with one positioned read.

        Raises:
            InvalidInput: the file is gone, unreadable, or shorter than when it was scanned
                (it changed while the job read it).
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                data = os.pread(fd, self.length, self.offset)
            finally:
                os.close(fd)
        except OSError as exc:
            raise InvalidInput(f"The input file {self.path} could not be read: {exc}.") from None
        if len(data) != self.length:
            raise InvalidInput(
                f"The input file {self.path} changed while it was transformed: {self.length} "
                f"bytes at offset {self.offset} were expected, {len(data)} were there."
            )
        return data


@dataclass(frozen=True)
class Block:
    """Whole records of one object: raw bytes (files) or an Arrow batch (tables).

    Attributes:
        first: the number of the block's first line or row in its object (from 1).
        data: the records, or where they are in a local file.
        size: how many input bytes the block stands for (progress).
    """

    first: int
    data: bytes | pa.RecordBatch | Span
    size: int


@dataclass(frozen=True)
class Oversized:
    """A record longer than the payload allows, skipped: its line number and first bytes."""

    line: int
    head: bytes
    size: int


def _hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _content_type(name: str, given: str | None) -> str:
    if given is not None:
        return given
    lower = name.lower().removesuffix(".gz")
    if lower.endswith((".jsonl", ".jsonlines", ".ndjson")):
        return JSONLINES
    if lower.endswith(".json"):
        return JSON
    return CSV


def list_inputs(spec: TransformSpec, engine: SqlEngine, lake: Lake) -> list[InputObject]:
    """The SOURCE's inputs, in name order (outputs under ``spec.output`` are left out).

    Raises:
        NotFound: nothing to read there.
        InvalidInput: a bad location or query.
    """
    source = spec.source
    kind = engine.classify_source(source)
    if kind != "path":
        name = source if kind == "table" else "query"
        return [InputObject(name, source, None, "rows", "rows")]
    gz = spec.compression == "Gzip"
    if source.startswith("s3://"):
        return _lake_inputs(spec, lake, gz)
    location = resolve_location(source, lake)
    fs, path = location.fs, location.path
    if any(ch in path for ch in "*?["):
        paths = sorted(fs.glob(path))
        base = path[: min(path.find(c) for c in "*?[" if c in path)].rpartition("/")[0]
    elif fs.isdir(path):
        paths, base = sorted(fs.find(path)), path.rstrip("/")
    elif fs.exists(path):
        paths, base = [path], path.rpartition("/")[0]
    else:
        raise NotFound(
            f"{source!r} is neither a catalog table (DATABASE.TABLE), a query, nor an existing "
            "file or folder."
        )
    found = []
    for p in paths:
        rel = p[len(base) :].lstrip("/") if p.startswith(base) else p.rpartition("/")[2]
        if (_hidden(rel) and p != path) or fs.isdir(p):
            continue
        found.append(
            InputObject(
                rel,
                p,
                fs.size(p),
                "file",
                _content_type(rel, spec.content_type),
                gz or rel.endswith(".gz"),
                path=p,
                local=p if location.local_path is not None else None,
                fs=fs,
            )
        )
    if not found:
        raise NotFound(f"{source!r} holds no files to transform.")
    return found


def _lake_inputs(spec: TransformSpec, lake: Lake, gz: bool) -> list[InputObject]:
    bucket, key = Lake.parse_uri(spec.source)
    out_bucket, out_prefix = Lake.parse_uri(spec.output)
    if key and not key.endswith("/") and lake.exists(bucket, key):
        objects = [lake.head(bucket, key)]
        base = key.rpartition("/")[0]
    else:
        objects = lake.list(bucket, key).objects
        base = key.rpartition("/")[0]
    found = []
    for obj in objects:
        rel = obj.key[len(base) :].lstrip("/")
        named = obj.key == key  # an object named outright is read, whatever its name
        ours = bucket == out_bucket and obj.key.startswith(out_prefix) and obj.key.endswith(".out")
        if (_hidden(rel) and not named) or ours:
            continue
        found.append(
            InputObject(
                rel,
                Lake.uri(bucket, obj.key),
                obj.size,
                "file",
                _content_type(rel, spec.content_type),
                gz or rel.endswith(".gz"),
                bucket=bucket,
                key=obj.key,
                local=lake.local_path(bucket, obj.key),
            )
        )
    if not found:
        raise NotFound(
            f"There is nothing to transform under {spec.source} (objects whose names start with "
            "'_' or '.', and earlier outputs (*.out) under the output location, are left out)."
        )
    return found


@contextmanager
def open_input(obj: InputObject, lake: Lake) -> Iterator[BinaryIO]:
    """The object's bytes as a stream, decompressed when it is gzip."""
    if obj.bucket is not None and obj.key is not None:
        raw: BinaryIO = lake.open_read(obj.bucket, obj.key)
    else:
        raw = obj.fs.open(obj.path, "rb")
    with raw:
        if obj.gzip:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield raw


def file_blocks(stream: BinaryIO, limit: int, *, whole: bool) -> Iterator[Block | Oversized]:
    """Cut a stream into blocks of whole lines of at most ``limit`` bytes.

    A line longer than ``limit`` becomes an :class:`Oversized` (read past, never held
    whole). With ``whole`` (SplitType None) the object is one block, or one
    :class:`Oversized` when it is larger than ``limit``.

    Raises:
        InvalidInput: a gzip object that is not valid gzip.
    """
    try:
        yield from (_whole(stream, limit) if whole else _lines(stream, limit))
    except (OSError, EOFError) as exc:
        raise InvalidInput(f"An input object could not be read or decompressed: {exc}.") from None


def count_lines(data: bytes | bytearray, end: int | None = None) -> int:
    """How many line ends ``data[:end]`` holds (NumPy counts them 4x faster than ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8, -1 if end is None else end) == _NL))


def span_blocks(path: str, limit: int) -> Iterator[Block | Oversized]:
    """Cut a local file into blocks of whole lines of at most ``limit`` bytes, as
    :func:`file_blocks` does, each given as the :class:`Span` where it lies.

    The file is read once here, into one reused buffer, only to find the cuts and
    count lines (a failed record's line number is known from its block's first line).

    Raises:
        InvalidInput: the file cannot be read.
    """
    # One byte over the limit tells a block that ends the file from one cut short.
    buffer = bytearray(limit + 1)
    offset, line = 0, 1
    try:
        with open(path, "rb", buffering=0) as stream:
            while True:
                stream.seek(offset)
                got = stream.readinto(buffer)
                if not got:
                    return
                cut = got if got <= limit else buffer.rfind(b"\n", 0, limit) + 1
                if cut:
                    yield Block(line, Span(path, offset, cut), cut)
                    line += count_lines(buffer, cut)
                    offset += cut
                    continue
                # One line longer than the payload: report it and read past its end.
                size, end = 0, buffer.find(b"\n", limit, got)
                while end < 0:
                    size += got
                    got = stream.readinto(buffer)
                    if not got:
                        break
                    end = buffer.find(b"\n", 0, got)
                size += end + 1 if end >= 0 else 0
                stream.seek(offset)
                yield Oversized(line, _head(stream.read(min(size, _SHOWN))), size)
                offset += size
                line += 1
    except OSError as exc:
        raise InvalidInput(f"The input file {path} could not be read: {exc}.") from None


def _whole(stream: BinaryIO, limit: int) -> Iterator[Block | Oversized]:
    data = stream.read(limit + 1)
    if len(data) <= limit:
        yield Block(1, data, len(data))
        return
    size = len(data)
    while more := stream.read(limit):
        size += len(more)
    yield Oversized(1, data[:_SHOWN], size)


def _lines(stream: BinaryIO, limit: int) -> Iterator[Block | Oversized]:
    line, pending, eof = 1, b"", False
    while True:
        while len(pending) <= limit and not eof:
            more = stream.read(limit)
            eof = not more
            pending += more
        if not pending:
            return
        if eof and len(pending) <= limit:
            yield Block(line, pending, len(pending))
            return
        cut = pending.rfind(b"\n", 0, limit) + 1
        if cut:
            block, pending = pending[:cut], pending[cut:]
            yield Block(line, block, len(block))
            line += block.count(b"\n")
            continue
        # One line longer than the payload: report it and read past its end.
        head, size = _head(pending[:_SHOWN]), 0
        end = pending.find(b"\n", limit)
        while end < 0 and not eof:
            size += len(pending)
            pending = stream.read(limit)
            eof = not pending
            end = pending.find(b"\n")
        if end < 0:
            size, pending = size + len(pending), b""
        else:
            size, pending = size + end + 1, pending[end + 1 :]
        yield Oversized(line, head, size)
        line += 1


def _head(data: bytes) -> bytes:
    """An oversized record's first bytes, without the line end (or lines) after it."""
    return data.split(b"\n", 1)[0]


def arrow_blocks(engine: SqlEngine, source: str, limit: int) -> Iterator[Block]:
    """A table's or query's rows as Arrow batches of at most about ``limit`` bytes.

    Raises:
        InvalidInput: a bad query.
        NotFound: no such table.
    """
    first = 1
    with engine.reader(source, _ARROW_BATCH_ROWS) as reader:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            per_row = max(1, batch.nbytes // batch.num_rows)
            step = max(1, limit // per_row)
            for start in range(0, batch.num_rows, step):
                part = batch.slice(start, step)
                yield Block(first, part, part.nbytes)
                first += part.num_rows
