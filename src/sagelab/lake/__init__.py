"""The data lake: object store (S3's role), catalog and crawler (Glue's), SQL (Athena's).

Locations written ``s3://bucket/key`` are buckets of the lake; anything else is
a path or URL outside it.
"""

from __future__ import annotations

from sagelab.lake._catalog import (
    Catalog,
    DatabaseInfo,
    PartitionInfo,
    TableInfo,
    parse_table_name,
    partition_path,
    validate_name,
)
from sagelab.lake._crawler import CrawlReport, SkippedFile, TableCrawl, crawl
from sagelab.lake._locations import Location, resolve_location
from sagelab.lake._objects import Lake, ListResult, ObjectInfo, ObjectWriter
from sagelab.lake._schema import (
    Column,
    IncompatibleSchema,
    SchemaDiff,
    arrow_to_glue,
    columns_from_arrow,
    diff_columns,
    glue_to_arrow,
    glue_to_duckdb,
    unify_types,
)
from sagelab.lake._sql import ARTIFACTS_BUCKET, WAREHOUSE_BUCKET, QueryResult, SqlEngine

__all__ = [
    "ARTIFACTS_BUCKET",
    "WAREHOUSE_BUCKET",
    "Catalog",
    "Column",
    "CrawlReport",
    "DatabaseInfo",
    "IncompatibleSchema",
    "Lake",
    "ListResult",
    "Location",
    "ObjectInfo",
    "ObjectWriter",
    "PartitionInfo",
    "QueryResult",
    "SchemaDiff",
    "SkippedFile",
    "SqlEngine",
    "TableCrawl",
    "TableInfo",
    "arrow_to_glue",
    "columns_from_arrow",
    "crawl",
    "diff_columns",
    "glue_to_arrow",
    "glue_to_duckdb",
    "parse_table_name",
    "partition_path",
    "resolve_location",
    "unify_types",
    "validate_name",
]
