"""Batch ingestion (Glue jobs' and Firehose's role): files in, a catalog table of Parquet out.

``ingest`` reads CSV, JSON lines, JSON arrays and Parquet from a path, a glob,
a folder or a URL; writes Parquet (zstd or snappy) through the lake,
optionally partitioned; registers or updates the catalog table; and sends
every record it cannot read to a reject log in the lake, so that
``rows_in == rows_written + rows_rejected`` always holds.
"""

from __future__ import annotations

from sagelab.ingest._batch import INGEST_DATE_COLUMN, IngestResult, ingest
from sagelab.ingest._sources import FORMATS, detect_format

__all__ = [
    "FORMATS",
    "INGEST_DATE_COLUMN",
    "IngestResult",
    "detect_format",
    "ingest",
]
