"""What to ingest: a path, a glob, a folder or a URL, resolved to local files with a format each.

Files that are not on the local disk (a URL, or a lake on remote storage) are
copied to the run's staging folder first, in chunks, so that DuckDB and PyArrow
read them as local files at full speed and the slow path can reread them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sagelab.errors import InvalidInput, NotFound
from sagelab.lake import Lake, resolve_location

__all__ = ["FORMATS", "SourceFile", "detect_format", "resolve_sources"]

#: The formats sagelab ingests: JSON lines, a JSON document (an array of records, or
#: records written over many lines), CSV, Parquet.
FORMATS = ("jsonl", "json", "csv", "parquet")

_BY_EXTENSION = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_GLOB_CHARS = frozenset("*?[")
_SNIFF_BYTES = 4096
_COPY_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    """One file to ingest.

    Attributes:
        name: the file as the user named it (or as a glob or folder expanded); reject
            records and messages show this.
        path: a local path to read.
        size: its size in bytes.
        format: one of :data:`FORMATS`.
    """

    name: str
    path: str
    size: int
    format: str


def detect_format(path: str) -> str:
    """The format of a local file: by extension, then by its first bytes.

    ``.json`` (and an unknown extension) is sniffed: a file starting with ``[``
    is a JSON array; one starting with ``{`` is JSON lines when its first line
    is a whole JSON value, else a JSON document (a pretty-printed object);
    ``PAR1`` is Parquet; anything else is read as CSV.
    """
    ext = Path(path).suffix.lower()
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{") or ext == ".json":
        first, newline, _ = text.partition(b"\n")
        if not newline:
            return "jsonl"  # one line, or a first line longer than the sniff: JSON lines
        try:
            json.loads(first)
        except ValueError:
            return "json"  # the first record goes on over more lines: a JSON document
        return "jsonl"
    return "csv"


def resolve_sources(
    source: str | Sequence[str], *, lake: Lake, staging: str, format: str | None = None
) -> list[SourceFile]:
    """Expand ``source`` into files, copying remote ones into ``staging``.

    Raises:
        NotFound: a path, glob or URL that matches no file (naming it).
        InvalidInput: an unknown ``format``, or a source that is not a string.
    """
    if format is not None and format not in FORMATS:
        raise InvalidInput(
            f"The format {format!r} is not one sagelab ingests. Use one of: {', '.join(FORMATS)} "
            "(or leave it out to detect it from the file)."
        )
    items = [source] if isinstance(source, str) else list(source)
    if not items:
        raise InvalidInput("Nothing to ingest: give at least one path, glob, folder or URL.")
    found: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"A source must be a non-empty path or URL; got {item!r}.")
        found.extend(_expand(item, lake, staging, len(found)))
    files = []
    for name, path in found:
        size = os.path.getsize(path)
        fmt = format or detect_format(path)
        files.append(SourceFile(name=name, path=path, size=size, format=fmt))
    return files


def _expand(item: str, lake: Lake, staging: str, seq: int) -> list[tuple[str, str]]:
    """``(name, local path)`` for each file that ``item`` names."""
    is_url = "://" in item and not item.startswith("file://")
    if not is_url:
        path = item[len("file://") :] if item.startswith("file://") else item
        return _expand_local(item, str(Path(path).expanduser()))
    location = resolve_location(item, lake)
    if location.local_path is not None:
        return _expand_local(item, location.local_path)
    fs, path = location.fs, location.path
    if _GLOB_CHARS & set(path):
        matches = sorted(fs.glob(path))
    elif fs.isdir(path):
        matches = sorted(p for p in fs.find(path) if not _hidden(p[len(path) :]))
    elif fs.exists(path):
        matches = [path]
    else:
        matches = []
    if not matches:
        raise NotFound(f"The source {item!r} does not exist (no file matches it).")
    out = []
    for i, remote in enumerate(matches):
        local = os.path.join(staging, f"source-{seq + i}{Path(remote).suffix}")
        with fs.open(remote, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
        out.append((fs.unstrip_protocol(remote) if len(matches) > 1 else item, local))
    return out


def _expand_local(item: str, path: str) -> list[tuple[str, str]]:
    if _GLOB_CHARS & set(path):
        matches = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not matches:
            raise NotFound(f"The glob {item!r} matches no file.")
        return [(p, p) for p in matches]
    if os.path.isdir(path):
        matches = []
        for root, dirs, names in os.walk(path):
            # Hidden and '_'-prefixed entries are metadata (_SUCCESS, .crc), not data.
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            matches.extend(os.path.join(root, n) for n in sorted(names) if not _hidden(n))
        if not matches:
            raise NotFound(f"The folder {item!r} holds no data file.")
        return [(p, p) for p in matches]
    if not os.path.isfile(path):
        raise NotFound(f"The source file {item!r} does not exist. Check the path.")
    return [(item, path)]


def _hidden(name: str) -> bool:
    return any(part.startswith((".", "_")) for part in name.strip("/").split("/") if part)
