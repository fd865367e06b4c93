"""What every converter shares: the run's context, its result, and a watched DuckDB ``COPY``."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from sagelab.errors import InvalidInput
from sagelab.ingest._duck import literal
from sagelab.ingest._rejects import RejectLog

__all__ = ["Context", "Converted", "Fallback", "check_names", "parquet_options", "short_reason"]

#: A record (a JSON line, a CSV row) longer than this is rejected rather than read.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Nested JSON deeper than this is kept as JSON text instead of nested columns.
MAX_NESTING = 32
_POLL_SECONDS = 0.25


class Fallback(Exception):
    """The fast path cannot vouch for its output; the slow path must convert the file."""


@dataclass
class Converted:
    """One source file converted to one staged Parquet file.

    Attributes:
        rows_in: records found in the source.
        rows_written: records in ``path``.
        rows_rejected: records sent to the reject log.
        path: the staged Parquet file, or None when no record was written.
        route: ``fast`` or ``slow``: which path converted it (reported, for tuning).
    """

    rows_in: int
    rows_written: int
    rows_rejected: int
    path: str | None
    route: str


@dataclass
class Context:
    """What a converter needs from the run.

    Attributes:
        con: the run's DuckDB connection.
        staging: a private local folder for intermediate files.
        rejects: where rejected records go.
        compression: the Parquet codec (``zstd`` or ``snappy``).
        report: called with the fraction (0..1) of the current file done, or None.
    """

    con: duckdb.DuckDBPyConnection
    staging: str
    rejects: RejectLog
    compression: str
    report: Callable[[float], None] | None = None

    def copy(self, select: str, out: str) -> int:
        """Run ``COPY (select) TO out`` as Parquet; returns the rows written.

        Raises:
            duckdb.Error: whatever DuckDB raises; converters decide what it means.
        """
        sql = f"COPY ({select}) TO {literal(out)} ({parquet_options(self.compression)})"
        row = (
            _first(self.con.execute(sql).fetchall()) if self.report is None else self._watched(sql)
        )
        return int(row[0]) if row else 0

    def _watched(self, sql: str) -> Any:
        # DuckDB reports a running query's progress to other threads; poll it.
        stop = threading.Event()
        report = self.report

        def poll() -> None:
            while not stop.wait(_POLL_SECONDS):
                pct = self.con.query_progress()
                if pct >= 0 and report is not None:
                    report(min(pct, 100.0) / 100.0)

        watcher = threading.Thread(target=poll, name="sagelab-ingest-progress", daemon=True)
        watcher.start()
        try:
            return _first(self.con.execute(sql).fetchall())
        finally:
            stop.set()
            watcher.join()


def check_names(names: list[str], source: str) -> None:
    """Refuse column names that differ only in case, which DuckDB would silently rename.

    DuckDB reads keys ``a`` and ``A`` as columns ``a`` and ``A_1``; Athena could not tell
    them apart either, so the data is refused rather than renamed.

    Raises:
        InvalidInput: naming both columns.
    """
    lowered = {n.lower(): n for n in names}
    for name in names:
        base, _, suffix = name.rpartition("_")
        if suffix.isdigit() and base.lower() in lowered and lowered[base.lower()] != base:
            raise InvalidInput(
                f"The source {source!r} has columns {lowered[base.lower()]!r} and {base!r}, "
                "whose names differ only in case; Athena and DuckDB cannot tell them apart. "
                "Rename one of them."
            )


def parquet_options(compression: str) -> str:
    """DuckDB's Parquet options for a codec."""
    # zstd at level 1 compresses about as well as its default level 3 here, for less CPU.
    level = ", COMPRESSION_LEVEL 1" if compression == "zstd" else ""
    return f"FORMAT parquet, COMPRESSION {compression}{level}, ROW_GROUP_SIZE 122880"


def _first(rows: list[Any]) -> Any:
    # fetchall, never fetchone: a result left half-read blocks the connection's next query.
    return rows[0] if rows else None


_NOISE = (
    re.compile(r"^[A-Za-z ]*Error: "),
    re.compile(r'^JSON transform error in file "[^"]*", in line \d+: '),
    re.compile(r'^Malformed JSON in file "[^"]*", at byte \d+ in line \d+: '),
)


def short_reason(exc: BaseException) -> str:
    """DuckDB's message without its error class, file name and hints: the reason itself."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for pattern in _NOISE:
        text = pattern.sub("", text)
    return text.strip()
