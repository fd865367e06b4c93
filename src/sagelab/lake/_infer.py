"""What the crawler infers: each file's format and columns, then each dataset's table.

Each file is classified by its first bytes, with its name as a hint, the way
Glue's built-in classifiers do: Parquet (magic ``PAR1``), gzip (magic
``1f 8b``, then the decompressed head is classified), JSON lines (the first
non-blank character is ``{``), CSV otherwise. Types come from

* Parquet: the footer's schema (the file is never read whole); its record
  count is exact and its required fields are the only non-nullable columns;
* JSON lines: PyArrow's JSON reader over a bounded head of the file, which
  infers nested structs and lists;
* CSV: DuckDB's sniffer (``sniff_csv``) over the same bounded head, which
  detects the delimiter, the quote and whether the first line is a header.

The head is at most :data:`SAMPLE_BYTES` (cut at the last full line), so a
crawl costs about the same for a 1 MB file as for a 100 GB one; a type that
only shows after the head is not seen, as with Glue. Text formats do not carry
nullability, so their columns are always nullable.

A dataset's files are then merged into one table plan (:func:`plan_table`):
its partition keys from ``key=value`` folders, its columns from every file's
columns, widened with :func:`~sagelab.lake._schema.unify_types`.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from sagelab.errors import InvalidInput
from sagelab.lake._schema import Column, IncompatibleSchema, columns_from_arrow, unify_types

__all__ = [
    "SAMPLE_BYTES",
    "DataFile",
    "Dataset",
    "FileSchema",
    "SkipHook",
    "SkipReason",
    "TablePlan",
    "Unusable",
    "find_datasets",
    "inspect_file",
    "partition_of",
    "plan_table",
]

#: How much of a text file's (decompressed) head is read to infer its schema.
SAMPLE_BYTES = 1024 * 1024
# A JSON line or CSV row longer than this is not sampled further: the file is skipped.
_MAX_LINE_BYTES = 32 * 1024 * 1024

SkipReason = Literal["unreadable", "unknown_format", "empty", "incompatible"]

_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
# Formats the crawler recognises only to say why it will not read them.
_OTHER_MAGICS: list[tuple[bytes, str]] = [
    (b"ORC", "ORC"),
    (b"Obj\x01", "Avro"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"BZh", "bzip2-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
]
_PARQUET_EXTENSIONS = (".parquet", ".parq", ".pq")
_KV = re.compile(r"^([^=]+)=(.*)$")
_INT = re.compile(r"^[+-]?\d+$")
# Hive's folder name for a null partition value: it says nothing about the key's type.
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# 'void' as a type (not as a struct field's name, which a ':' follows).
_VOID = re.compile(r"(?<=[<:,])void(?=[>,])|^void$")
_JSON_EXTENSIONS = (".json", ".jsonl", ".ndjson")


class Unusable(Exception):
    """A file the crawler cannot use, with the reason (internal: it becomes a skipped entry)."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: SkipReason = reason
        self.detail = detail


@dataclass(frozen=True)
class FileSchema:
    """What the crawler learned about one file.

    Attributes:
        classification: ``csv``, ``json`` (JSON lines) or ``parquet``.
        compression: ``gzip`` or ``""``.
        columns: the file's columns; an all-null column has the type ``void``.
        serde_parameters: for CSV, ``delimiter``, ``header`` and ``quote``.
        record_count: exact for Parquet (from its footer), else None.
    """

    classification: str
    compression: str
    columns: list[Column]
    serde_parameters: dict[str, Any] = field(default_factory=dict)
    record_count: int | None = None


def inspect_file(fs: Any, path: str, size: int, workdir: str) -> FileSchema:
    """Classify one file and infer its columns.

    Args:
        fs: the fsspec filesystem holding the file.
        path: the file's path on ``fs``.
        size: its size in bytes, as listed.
        workdir: a private folder for the sample handed to DuckDB.

    Raises:
        Unusable: the file is empty, of an unknown format, or unreadable; the
            exception carries the reason and a message for the user.
    """
    if size == 0:
        raise Unusable("empty", "The file is empty (0 bytes).")
    name = posixpath.basename(path).lower()
    try:
        with fs.open(path, "rb") as raw:
            magic = raw.read(4)
    except OSError as exc:
        raise Unusable("unreadable", f"The file cannot be opened: {exc}.") from exc
    if magic == _PARQUET_MAGIC:
        return _parquet(fs, path)
    if name.endswith(_PARQUET_EXTENSIONS):
        raise Unusable(
            "unreadable",
            "The file is named like Parquet but does not start with Parquet's magic bytes "
            "'PAR1': it is corrupt or not Parquet.",
        )
    gzipped = magic.startswith(_GZIP_MAGIC)
    if name.endswith(".gz") and not gzipped:
        raise Unusable(
            "unreadable",
            "The file is named '.gz' but is not gzip-compressed (no gzip magic bytes).",
        )
    if gzipped and not name.endswith(".gz"):
        raise Unusable(
            "unreadable",
            "The file is gzip-compressed but not named '.gz'; readers tell compression by the "
            "name, so they would read it as garbage. Add '.gz' to its name.",
        )
    inner_name = name[: -len(".gz")] if name.endswith(".gz") else name
    sample = _head(fs, path, gzipped)
    compression = "gzip" if gzipped else ""
    if gzipped and sample.startswith(_PARQUET_MAGIC):
        raise Unusable(
            "unknown_format",
            "The file is gzip-compressed Parquet, which readers cannot seek into; Parquet "
            "compresses its pages itself: store it uncompressed (e.g. codec 'zstd' inside).",
        )
    _refuse_binary(sample)
    text = sample.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise Unusable("empty", "The file holds only blank lines.")
    if text.startswith(b"{"):
        return _json_lines(sample, compression)
    if text.startswith(b"["):
        raise Unusable(
            "unknown_format",
            "The file is one JSON document (an array), not JSON lines: write one JSON object "
            "per line.",
        )
    if inner_name.endswith(_JSON_EXTENSIONS):
        raise Unusable(
            "unknown_format",
            "The file is named like JSON but its first character is not '{': JSON lines files "
            "hold one JSON object per line.",
        )
    return _csv(sample, compression, workdir)


# --------------------------------------------------------------------------- reading heads
def _head(fs: Any, path: str, gzipped: bool) -> bytes:
    """The first :data:`SAMPLE_BYTES` of the (decompressed) file, cut at the last full line.

    Raises:
        Unusable: the file or its gzip stream cannot be read, or its first line is huge.
    """
    try:
        with fs.open(path, "rb") as raw:
            stream: Any = gzip.GzipFile(fileobj=raw) if gzipped else raw
            data = stream.read(SAMPLE_BYTES + 1)
            if len(data) <= SAMPLE_BYTES:
                return bytes(data)
            # Keep reading only while the head holds no full line: one very long line
            # (a wide JSON object) must still be sampled whole.
            while b"\n" not in data:
                chunk = stream.read(SAMPLE_BYTES)
                if not chunk:
                    return bytes(data)
                data += chunk
                if len(data) > _MAX_LINE_BYTES:
                    raise Unusable(
                        "unreadable",
                        f"The first line is longer than {_MAX_LINE_BYTES // (1024 * 1024)} MiB; "
                        "the crawler samples files line by line.",
                    )
            return bytes(data[: data.rfind(b"\n") + 1])
    except (OSError, EOFError, zlib.error) as exc:
        what = "gzip stream" if gzipped else "file"
        raise Unusable("unreadable", f"The {what} cannot be read: {exc}.") from exc


def _refuse_binary(sample: bytes) -> None:
    for magic, what in _OTHER_MAGICS:
        if sample.startswith(magic):
            raise Unusable(
                "unknown_format",
                f"The file is {what}; the crawler reads CSV, JSON lines and Parquet.",
            )
    if b"\x00" in sample[:8192]:
        raise Unusable(
            "unknown_format",
            "The file is binary (it holds NUL bytes) and not Parquet; the crawler reads CSV, "
            "JSON lines and Parquet.",
        )


# --------------------------------------------------------------------------- formats
def _parquet(fs: Any, path: str) -> FileSchema:
    try:
        with fs.open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            schema = pf.schema_arrow
            rows = pf.metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise Unusable(
            "unreadable", f"The Parquet footer cannot be read (corrupt or truncated file): {exc}"
        ) from exc
    # Parquet carries nullability: a required field can hold no null, whatever the sample.
    return FileSchema("parquet", "", columns_from_arrow(schema), record_count=rows)


def _json_lines(sample: bytes, compression: str) -> FileSchema:
    # One block for the whole sample, so types are inferred from all of it at once.
    options = pajson.ReadOptions(block_size=max(len(sample) + 1, 1 << 16))
    try:
        table = pajson.read_json(io.BytesIO(sample), read_options=options)
    except pa.ArrowException as exc:
        raise Unusable("unreadable", f"The file is not valid JSON lines: {exc}") from exc
    if table.num_rows == 0:
        raise Unusable("empty", "The file holds no JSON records.")
    columns = [Column(c.name, c.type, nullable=True) for c in columns_from_arrow(table.schema)]
    return FileSchema("json", compression, columns)


def _csv(sample: bytes, compression: str, workdir: str) -> FileSchema:
    # DuckDB's sniffer reads paths, and the sample is already decompressed and cut at a
    # line end, so it goes to a private file rather than DuckDB reading the source itself.
    sample_path = os.path.join(workdir, f"sample-{os.urandom(8).hex()}.csv")
    with open(sample_path, "wb") as out:
        out.write(sample)
    con = duckdb.connect()
    try:
        try:
            rows = con.execute(
                "SELECT Delimiter, Quote, HasHeader, Prompt FROM sniff_csv(?, sample_size=-1)",
                [sample_path],
            ).fetchall()
        except duckdb.Error as exc:
            raise Unusable(
                "unknown_format",
                "The file is not CSV, JSON lines or Parquet (DuckDB's CSV sniffer: "
                f"{str(exc).splitlines()[0]}).",
            ) from exc
        delimiter, quote, has_header, prompt = rows[0]
        # The sniffer's 'Prompt' is the read_csv call with every detected option spelled out.
        read = prompt.strip().rstrip(";")
        try:
            schema = con.sql(f"SELECT * {read} LIMIT 0").to_arrow_table().schema
            counts = con.execute(
                "SELECT count(*), "
                + ", ".join(f"count({_quote_ident(f.name)})" for f in schema)
                + f" {read}"
            ).fetchall()[0]
        except duckdb.Error as exc:
            raise Unusable(
                "unreadable", f"The CSV file cannot be read: {str(exc).splitlines()[0]}"
            ) from exc
    finally:
        con.close()
        os.remove(sample_path)
    if len(schema) < 2:
        # Glue's CSV classifier asks for at least two columns, so a text file (a README)
        # does not become a one-column table.
        raise Unusable(
            "unknown_format",
            "The file has a single column, so it is not taken for CSV (at least two columns "
            "are needed, as with Glue's CSV classifier).",
        )
    if counts[0] == 0:
        raise Unusable("empty", "The CSV file has a header but no rows.")
    columns = []
    for i, (f, non_null) in enumerate(zip(schema, counts[1:], strict=True)):
        # Glue names the columns of a header-less file col0, col1, ...
        name = f.name if has_header else f"col{i}"
        # A column empty in the whole sample says nothing of its type: 'void' lets
        # another file decide it when schemas are merged.
        glue_type = "void" if non_null == 0 else columns_from_arrow(pa.schema([f]))[0].type
        columns.append(Column(name, glue_type, nullable=True))
    serde = {
        "delimiter": delimiter,
        "header": bool(has_header),
        # No quote seen in the sample: keep the CSV default, which later rows may use.
        "quote": '"' if quote in ("", "(empty)") else quote,
    }
    return FileSchema("csv", compression, columns, serde)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DataFile:
    """A file the crawl found.

    Attributes:
        rel: its path relative to the crawl root, or to its dataset once inside one.
        path: its path on the filesystem (unique: schemas are keyed by it).
        size: bytes.
    """

    rel: str
    path: str
    size: int


@dataclass(frozen=True)
class Dataset:
    """A folder that makes one table.

    Attributes:
        rel: the folder relative to the crawl root (``""`` for the root itself).
        name: the folder's name, before it is turned into a table name.
        files: its files, with ``rel`` relative to the dataset.
    """

    rel: str
    name: str
    files: list[DataFile]


@dataclass
class TablePlan:
    """The table a dataset makes.

    Attributes:
        partitions: partition values -> (folder relative to the dataset, parameters).
        record_count: exact when every file is Parquet, else None.
        notes: what the user should know about choices made.
    """

    classification: str
    compression: str
    serde: dict[str, Any]
    columns: list[Column]
    partition_keys: list[Column]
    partitions: dict[tuple[str, ...], tuple[str, dict[str, Any]]]
    files: int
    bytes: int
    record_count: int | None
    notes: list[str]


#: Called for each file a plan leaves out: ``skip(file, reason, detail)``.
SkipHook = Callable[[DataFile, SkipReason, str], None]
_Group = tuple[str, tuple[tuple[str, Any], ...]]


def find_datasets(files: list[DataFile], root_name: str) -> list[Dataset]:
    """The datasets under a crawl root.

    The root is one dataset when it directly holds files or holds only
    ``key=value`` folders; otherwise each direct sub-folder is one.
    """
    top_files = [f for f in files if "/" not in f.rel]
    top_dirs = sorted({f.rel.split("/", 1)[0] for f in files if "/" in f.rel})
    if top_files or all(_KV.match(d) for d in top_dirs):
        return [Dataset("", root_name, files)]
    return [
        Dataset(
            d,
            d,
            [
                DataFile(f.rel[len(d) + 1 :], f.path, f.size)
                for f in files
                if f.rel.startswith(d + "/")
            ],
        )
        for d in top_dirs
    ]


def partition_of(rel: str) -> tuple[list[tuple[str, str]], str]:
    """The leading ``key=value`` folders of a dataset-relative path, and their joined path.

    Values are percent-decoded, as Hive writes them escaped.
    """
    pairs: list[tuple[str, str]] = []
    folders = rel.split("/")[:-1]
    for folder in folders:
        m = _KV.match(folder)
        if m is None:
            break
        pairs.append((m.group(1), unquote(m.group(2))))
    return pairs, "/".join(folders[: len(pairs)])


def plan_table(
    dataset: Dataset, schemas: dict[str, FileSchema], skip: SkipHook
) -> TablePlan | None:
    """The table a dataset makes, or None when none of its files is usable.

    The partition layout and the format (with its CSV dialect) held by most
    files win; other files, and files whose columns do not merge, are passed
    to ``skip``. Plain and gzip files mix (readers tell them by the name).
    """
    usable = [f for f in dataset.files if f.path in schemas]
    if not usable:
        return None
    layouts = Counter(tuple(k for k, _ in partition_of(f.rel)[0]) for f in usable)
    keys = max(layouts, key=lambda k: (layouts[k], len(k)))
    groups = Counter(_group(schemas[f.path]) for f in usable)
    group = max(groups, key=lambda g: (groups[g], g))
    merged: dict[str, Column] = {}
    seen_in: Counter[str] = Counter()
    kept: list[tuple[DataFile, FileSchema, list[tuple[str, str]], str]] = []
    # Files with the most common columns go first, so that one odd file met early
    # cannot make the dataset's many regular files look incompatible.
    shapes = Counter(_shape(schemas[f.path]) for f in usable)
    for f in sorted(usable, key=lambda f: -shapes[_shape(schemas[f.path])]):
        schema = schemas[f.path]
        pairs, part_rel = partition_of(f.rel)
        if tuple(k for k, _ in pairs) != keys:
            layout = "/".join(f"{k}=..." for k in keys) or "no partition folders"
            skip(
                f,
                "incompatible",
                f"The file's partition folders do not match the dataset's ({layout}).",
            )
            continue
        if _group(schema) != group:
            skip(
                f,
                "incompatible",
                f"The file is {_describe(_group(schema))} but the dataset holds "
                f"{_describe(group)}; one table reads one format.",
            )
            continue
        try:
            merged = _merge(merged, schema.columns, by_position=schema.classification == "csv")
        except InvalidInput as exc:  # also a type string that cannot be parsed
            skip(f, "incompatible", f"The file's columns do not fit the other files': {exc}")
            continue
        seen_in.update(c.name for c in schema.columns)
        kept.append((f, schema, pairs, part_rel))
    if not kept:
        return None
    partition_keys = [
        Column(k, _partition_type([pairs[i][1] for _, _, pairs, _ in kept]))
        for i, k in enumerate(keys)
    ]
    notes = []
    key_names = {k.lower() for k in keys}
    columns = []
    for col in merged.values():
        if col.name.lower() in key_names:
            notes.append(
                f"The data column {col.name!r} has the name of a partition key; the partition "
                "key is used."
            )
            continue
        # A column some files lack reads as null there.
        nullable = col.nullable or seen_in[col.name] < len(kept)
        # No file showed a value: 'string' reads anything, as Glue does for such columns.
        columns.append(Column(col.name, _VOID.sub("string", col.type), nullable))
    exact = all(s.record_count is not None for _, s, _, _ in kept)
    partitions: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}
    for f, schema, pairs, part_rel in kept if keys else []:
        values = tuple(v for _, v in pairs)
        _, params = partitions.setdefault(values, (part_rel, {"objectCount": 0, "sizeKey": 0}))
        params["objectCount"] += 1
        params["sizeKey"] += f.size
        if exact:
            params["recordCount"] = params.get("recordCount", 0) + (schema.record_count or 0)
    classification, serde_items = group
    gzipped = sum(s.compression == "gzip" for _, s, _, _ in kept)
    if 0 < gzipped < len(kept):
        notes.append(f"{gzipped} of the {len(kept)} files are gzip-compressed.")
    return TablePlan(
        classification=classification,
        compression="gzip" if gzipped == len(kept) else "",
        serde=dict(serde_items),
        columns=columns,
        partition_keys=partition_keys,
        partitions=partitions,
        files=len(kept),
        bytes=sum(f.size for f, _, _, _ in kept),
        record_count=sum(s.record_count or 0 for _, s, _, _ in kept) if exact else None,
        notes=notes,
    )


def _shape(schema: FileSchema) -> tuple[tuple[str, str], ...]:
    return tuple((c.name, c.type) for c in schema.columns)


def _group(schema: FileSchema) -> _Group:
    return (schema.classification, tuple(sorted(schema.serde_parameters.items())))


def _describe(group: _Group) -> str:
    classification, serde = group
    text = {"csv": "CSV", "json": "JSON lines", "parquet": "Parquet"}[classification]
    if serde:
        text += " (" + ", ".join(f"{k}={v!r}" for k, v in serde) + ")"
    return text


def _merge(
    merged: dict[str, Column], columns: list[Column], *, by_position: bool
) -> dict[str, Column]:
    """``merged`` widened to hold ``columns`` too.

    Raises:
        InvalidInput: a column's types cannot be unified, or CSV columns at the same
            position have different names.
    """
    out = dict(merged)
    if by_position:
        names = list(out)
        for i, col in enumerate(columns[: len(names)]):
            if col.name != names[i]:
                raise InvalidInput(
                    f"column {i + 1} is {col.name!r} here but {names[i]!r} in the other files "
                    "(CSV columns are read by position)"
                )
    for col in columns:
        old = out.get(col.name)
        if old is None:
            out[col.name] = col
            continue
        try:
            unified = unify_types(old.type, col.type, col.name)
        except IncompatibleSchema as exc:
            # unify_types speaks of ingesting; here the fix is in the file.
            raise InvalidInput(
                f"column {col.name!r} is {col.type} here but {old.type} in the other files, and "
                "neither type holds the other's values. Fix the file or move it out of the "
                "dataset's folder"
            ) from exc
        out[col.name] = Column(col.name, unified, old.nullable or col.nullable)
    return out


def _partition_type(values: list[str]) -> str:
    real = [v for v in values if v != _HIVE_NULL]
    return "bigint" if real and all(_INT.match(v) for v in real) else "string"
