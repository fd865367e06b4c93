"""JSON lines and JSON array files to Parquet, exactly: every record is written or rejected.

**Fast path** (clean data, nearly DuckDB's own speed). DuckDB infers the types
from a sample and converts the whole file in one ``COPY``. Its reader raises
on most surprises after the sample (an unknown key, an object where a number
was), but not all: the guard (see :mod:`sagelab.ingest._duck`) checks the few
columns where a cast could silently change a value. Finally an independent
count of the file's lines must equal the rows written; a blank line, like any
dropped row, makes them differ.

**Slow path** (anything the fast path cannot vouch for). Python splits the
file into lines (it must, to keep each bad line's exact bytes and number);
DuckDB checks the lines in vectorised batches (``json_valid``, ``json_type``);
lines that are not UTF-8, not JSON, or not an object are rejected, the rest
are written to a clean copy, and DuckDB converts that with the types inferred
from *every* record (``sample_size=-1``), so the types hold every value. A
record DuckDB still refuses (a duplicate key, say) is named in its error by
line; it is rejected and the conversion retried.

Types, both paths: a column whose values have different JSON types is a
string column (strings as they are, other values as their JSON text);
nesting deeper than :data:`MAX_NESTING` levels is kept as JSON text; integers
beyond 64 bits are ``decimal(38,0)``. Blank lines are not records; a line
holding just ``null`` is a record of nulls (DuckDB reads it so, and both paths
agree). Keys that differ only in case are refused (see ``check_names``).
"""

from __future__ import annotations

import json
import os
import re
import threading
from array import array
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from sagelab.errors import InvalidInput
from sagelab.ingest._convert import (
    MAX_NESTING,
    MAX_RECORD_BYTES,
    Context,
    Converted,
    Fallback,
    check_names,
    short_reason,
)
from sagelab.ingest._duck import guard_sql, literal, projection
from sagelab.ingest._sources import SourceFile

__all__ = ["convert_json"]

_CHUNK = 16 * 1024 * 1024
#: DuckDB's JSON reader refuses values nested deeper than this.
MAX_DEPTH = 128
#: DuckDB's default largest JSON record.
_DUCKDB_OBJECT_BYTES = 16 * 1024 * 1024
_KEEP = frozenset({"OBJECT", "NULL", "SKIP"})
_LINE_ERROR = re.compile(r"in line (\d+)")
#: A file whose records DuckDB refuses more often than this is refused whole.
_MAX_RETRIES = 100
_NOT_OBJECT = {
    "ARRAY": "a JSON array, not an object: JSON lines hold one object per line",
    "VARCHAR": "a JSON string, not an object: JSON lines hold one object per line",
    "BIGINT": "a JSON number, not an object: JSON lines hold one object per line",
    "UBIGINT": "a JSON number, not an object: JSON lines hold one object per line",
    "DOUBLE": "a JSON number, not an object: JSON lines hold one object per line",
    "BOOLEAN": "a JSON boolean, not an object: JSON lines hold one object per line",
    "NULL": "a JSON null, not an object",
}


def convert_json(src: SourceFile, out: str, ctx: Context) -> Converted:
    """Convert a JSON lines (``jsonl``) or JSON array (``json``) file to Parquet at ``out``.

    Raises:
        InvalidInput: a JSON array file that is not valid JSON as a whole, or a file
            whose records DuckDB keeps refusing.
    """
    array_file = src.format == "json"
    try:
        return _fast(src, out, ctx, array_file)
    except Fallback:
        pass
    if os.path.exists(out):
        os.remove(out)
    return _slow(src, out, ctx, array_file)


def _document_layout(path: str) -> str:
    """DuckDB's format for a JSON document file: an ``array`` of records, or ``unstructured``
    (one or more values written over many lines, such as one pretty-printed object)."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "array" if head.startswith(b"[") else "unstructured"


def _reader(path: str, array_file: bool, *, full: bool = False, longest: int = 0) -> str:
    fmt = _document_layout(path) if array_file else "newline_delimited"
    # The slow path reads every record to infer the types. Both keep DuckDB's 16 MiB
    # buffers unless a record needs more: larger ones cost time on every file (a longer
    # record makes the fast path fall back; the slow path sizes them to its longest).
    more = ", sample_size=-1" if full else ""
    if longest >= _DUCKDB_OBJECT_BYTES:
        more += f", maximum_object_size={min(longest + 1, MAX_RECORD_BYTES)}"
    return (
        f"read_json({literal(path)}, format='{fmt}', records=true, "
        f"maximum_depth={MAX_NESTING}{more})"
    )


# --------------------------------------------------------------------------- fast path
def _fast(src: SourceFile, out: str, ctx: Context, array_file: bool) -> Converted:
    if src.size > MAX_RECORD_BYTES and array_file:
        # DuckDB reads a JSON array whole when checking it: keep huge ones on the slow path,
        # which streams its elements.
        raise Fallback("large JSON array")
    reader = _reader(src.path, array_file)
    try:
        if array_file:
            layout = _document_layout(src.path)
            counted = ctx.con.execute(
                f"SELECT count(*) FROM read_json_objects({literal(src.path)}, format='{layout}')"
            ).fetchall()
            records = int(counted[0][0])
        else:
            # Count lines on another thread while DuckDB works: the count is independent
            # of DuckDB's reader, which is the point of it.
            counter = _LineCounter(src.path)
            counter.start()
        rel = ctx.con.sql(f"SELECT * FROM {reader}")
        columns = list(zip(rel.columns, rel.types, strict=True))
        check_names(rel.columns, src.name)
        guard = guard_sql(reader, columns)
        if guard is not None:
            (row,) = ctx.con.execute(guard).fetchall()
            if row[1]:
                raise Fallback("values that the sampled types would change")
        written = ctx.copy(f"SELECT {projection(columns)} FROM {reader}", out)
    except duckdb.Error as exc:
        raise Fallback(short_reason(exc)) from exc
    finally:
        if not array_file:
            records = counter.result()
    if written != records:
        raise Fallback(f"{records} records but {written} rows")
    return Converted(records, written, 0, out if written else None, "fast")


class _LineCounter(threading.Thread):
    def __init__(self, path: str) -> None:
        super().__init__(name="sagelab-ingest-count", daemon=True)
        self.path = path
        self.lines = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.lines = _count_lines(self.path)
        except BaseException as exc:  # handed to the caller in result()
            self.error = exc

    def result(self) -> int:
        self.join()
        if self.error is not None:
            raise self.error
        return self.lines


def _count_lines(path: str) -> int:
    """Lines in a file, counting a last line without a newline: the records, if none is blank."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


# --------------------------------------------------------------------------- slow path
def _slow(src: SourceFile, out: str, ctx: Context, array_file: bool) -> Converted:
    clean = os.path.join(ctx.staging, f"clean-{os.path.basename(out)}.jsonl")
    origin = array("q")  # origin[i]: the source line (or array element) of clean line i+1
    rejected = 0
    longest = 0
    with open(clean, "wb") as sink:
        batches = _array_elements(src, ctx) if array_file else _line_batches(src, ctx)
        for first, texts, kinds in batches:
            # DuckDB reads a `null` record as a record of nulls; so does this path.
            kept = [
                t if k == "OBJECT" else "{}"
                for t, k in zip(texts, kinds, strict=True)
                if k in ("OBJECT", "NULL")
            ]
            if kept:
                block = ("\n".join(kept) + "\n").encode("utf-8")
                sink.write(block)
                longest = max(longest, max(map(len, kept)) * 4)  # UTF-8: at most 4 bytes a char
                origin.extend(first + i for i, k in enumerate(kinds) if k in ("OBJECT", "NULL"))
            for i, kind in enumerate(kinds):
                if kind not in _KEEP:
                    _reject(ctx, src, first + i, array_file, texts[i], kind)
                    rejected += 1
    rows_in = len(origin) + rejected
    written = 0
    for _ in range(_MAX_RETRIES):
        if not origin:
            break
        reader = _reader(clean, False, full=True, longest=longest)
        try:
            rel = ctx.con.sql(f"SELECT * FROM {reader}")
            columns = list(zip(rel.columns, rel.types, strict=True))
            check_names(rel.columns, src.name)
            written = ctx.copy(f"SELECT {projection(columns)} FROM {reader}", out)
            break
        except duckdb.Error as exc:
            found = _LINE_ERROR.search(str(exc))
            if found is None:
                raise InvalidInput(
                    f"The file {src.name!r} could not be converted: {short_reason(exc)}."
                ) from exc
            bad_line = int(found.group(1))
            raw = _drop_line(clean, bad_line)
            number = origin.pop(bad_line - 1)
            ctx.rejects.add(
                src.name,
                short_reason(exc),
                line=None if array_file else number,
                element=number if array_file else None,
                raw=raw,
            )
            rejected += 1
    else:
        raise InvalidInput(
            f"The file {src.name!r} has more than {_MAX_RETRIES} records that DuckDB refuses "
            "after they passed the JSON checks; fix the file and retry."
        )
    os.remove(clean)
    if written != len(origin):
        raise InvalidInput(
            f"The file {src.name!r}: {len(origin)} clean records but {written} rows were "
            "written; refusing to lose rows. Please report this with the file."
        )
    return Converted(rows_in, written, rejected, out if written else None, "slow")


def _reject(
    ctx: Context, src: SourceFile, number: int, array_file: bool, text: str | bytes, kind: str
) -> None:
    # A CRLF file's lines end in '\r': part of the line break, not of the record.
    text = text.rstrip("\r") if isinstance(text, str) else text.rstrip(b"\r")
    raw = text
    if kind == "UTF8" and isinstance(text, bytes):
        try:
            text.decode("utf-8")
            reason = "not valid UTF-8"
        except UnicodeDecodeError as exc:
            reason = (
                f"not valid UTF-8 (byte {exc.start + 1} of the line is 0x{text[exc.start]:02x})"
            )
    elif kind == "TOOLONG":
        reason = f"longer than {MAX_RECORD_BYTES} bytes, the limit of one record"
        raw = text[: 1024 * 1024]
    elif kind == "TOODEEP":
        reason = f"nested more than {MAX_DEPTH} levels deep, deeper than DuckDB reads"
    elif kind == "INVALID":
        reason = _json_error(text if isinstance(text, str) else text.decode("utf-8", "replace"))
    else:
        reason = _NOT_OBJECT.get(kind, f"a JSON {kind.lower()}, not an object")
        if array_file:
            reason = reason.replace(
                "JSON lines hold one object per line", "each element must be an object"
            )
    ctx.rejects.add(
        src.name,
        reason,
        line=None if array_file else number,
        element=number if array_file else None,
        raw=raw,
    )


def _too_deep(text: str) -> bool:
    """Whether a JSON text nests deeper than DuckDB's reader goes (most texts are ruled out cheaply)."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return False
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return True
    return _depth(value) > MAX_DEPTH


def _depth(value: object) -> int:
    # Iterative, so that a deep value cannot exhaust Python's recursion limit.
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node)
    return deepest


def _json_error(text: str) -> str:
    # Python's parser only words the reason; DuckDB has already judged the line invalid.
    try:
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        return f"not valid JSON: {exc}"
    return "not valid JSON (refused by DuckDB's JSON parser)"


def _line_batches(src: SourceFile, ctx: Context) -> Iterator[tuple[int, list, list[str]]]:
    """``(first line number, texts, kinds)`` per chunk of the file; kinds name what each line is.

    The split is done here, in Python, because the slow path's job is to keep
    every bad line's exact bytes and number, which no reader reports for JSON.
    """
    number = 1
    done = 0
    with open(src.path, "rb") as fh:
        carry = b""
        while True:
            chunk = fh.read(_CHUNK)
            done += len(chunk)
            if not chunk:
                if carry:
                    yield number, *_classify(carry, ctx)
                return
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            texts, kinds = _classify(data[:cut], ctx)
            yield number, texts, kinds
            number += len(texts)
            if ctx.report is not None and src.size:
                ctx.report(0.5 * done / src.size)


def _classify(block: bytes, ctx: Context) -> tuple[list, list[str]]:
    """The lines of a block and their kinds (OBJECT, ARRAY..., INVALID, UTF8, TOOLONG, SKIP)."""
    try:
        texts: list = block.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        texts = []
        for line in block.split(b"\n"):
            try:
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(line)  # stays bytes: kind UTF8, and its exact bytes are kept
    check = [t if isinstance(t, str) else "" for t in texts]
    kinds = _kinds(check, ctx)
    for i, t in enumerate(texts):
        if isinstance(t, bytes):
            kinds[i] = "UTF8"
    return texts, kinds


def _kinds(texts: list[str], ctx: Context) -> list[str]:
    """What each text is, judged by DuckDB in one vectorised query."""
    table = pa.table({"l": pa.array(texts, pa.large_string())})
    ctx.con.register("_sagelab_lines", table)
    try:
        # One parse a line: try() turns DuckDB's refusal of a text into NULL.
        found = ctx.con.sql(
            f"""
            WITH typed AS (SELECT l, try(json_type(l::JSON)) AS t FROM _sagelab_lines)
            SELECT CASE
              WHEN t IS NULL THEN CASE WHEN trim(l, ' \t\r') = '' THEN 'SKIP' ELSE 'INVALID' END
              -- Only a text with more brackets than DuckDB's depth limit can be too deep,
              -- and only a long one can have that many: most lines stop here.
              WHEN strlen(l) <= {2 * MAX_DEPTH} THEN t
              WHEN strlen(l) > {MAX_RECORD_BYTES} THEN 'TOOLONG'
              WHEN strlen(l) - strlen(replace(replace(l, '{{', ''), '[', '')) > {MAX_DEPTH}
                THEN 'DEEP?' || t
              ELSE t
            END AS kind FROM typed
            """
        ).to_arrow_table()
    finally:
        ctx.con.unregister("_sagelab_lines")
    kinds: list[str] = found.column(0).to_pylist()
    for i, kind in enumerate(kinds):
        if kind.startswith("DEEP?"):
            kinds[i] = "TOODEEP" if _too_deep(texts[i]) else kind[len("DEEP?") :]
    return kinds


def _array_elements(src: SourceFile, ctx: Context) -> Iterator[tuple[int, list, list[str]]]:
    """``(first element number, texts, kinds)`` per batch of a JSON array's elements."""
    try:
        reader = ctx.con.sql(
            f"SELECT json::VARCHAR AS text, json_type(json) AS kind FROM read_json_objects("
            f"{literal(src.path)}, format='{_document_layout(src.path)}', "
            f"maximum_object_size={MAX_RECORD_BYTES})"
        ).to_arrow_reader(100_000)
        number = 1
        for batch in reader:
            texts = batch.column(0).to_pylist()
            kinds = [
                "TOODEEP" if k in ("OBJECT", "ARRAY") and _too_deep(t) else k
                for t, k in zip(texts, batch.column(1).to_pylist(), strict=True)
            ]
            yield number, texts, kinds
            number += len(texts)
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        # PyArrow's reader hands DuckDB's error over as an OSError.
        raise InvalidInput(
            f"The file {src.name!r} is not valid JSON ({short_reason(exc)}), so its records "
            "cannot be told apart. Fix the file, or write it as JSON lines."
        ) from exc


def _drop_line(path: str, number: int) -> bytes:
    """Remove line ``number`` (1-based) from a file in place; returns the removed line."""
    tmp = path + ".tmp"
    removed = b""
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for i, line in enumerate(src, start=1):
            if i == number:
                removed = line.rstrip(b"\n")
            else:
                dst.write(line)
    os.replace(tmp, path)
    return removed
