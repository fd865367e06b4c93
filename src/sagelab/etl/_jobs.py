"""ETL jobs (Glue jobs' role): SQL or a Python transform from catalog tables into a catalog table.

Each runs as a job in its own process (see :mod:`sagelab.jobs`), with its log,
its row counts as metrics, and its output registered in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sagelab.errors import InvalidInput
from sagelab.jobs import load_target
from sagelab.lake import Catalog, Lake, SqlEngine
from sagelab.store import cached_store

if TYPE_CHECKING:
    from sagelab.jobs import JobContext

__all__ = ["run_python", "run_sql"]

_MODES = ("error", "overwrite", "append")


def _engine(ctx: JobContext, database: str | None) -> SqlEngine:
    settings = ctx.settings
    return SqlEngine(
        Catalog(cached_store(settings.db_url)),
        Lake.from_settings(settings),
        default_database=database,
    )


def run_sql(
    ctx: JobContext, *, sql: str, output: str, mode: str = "overwrite", database: str | None = None
) -> dict[str, Any]:
    """Run ``sql`` over the catalog and write its rows to the table ``output``."""
    if mode not in _MODES:
        raise InvalidInput(f"The ETL mode {mode!r} is not one of {', '.join(_MODES)}.")
    ctx.set_secondary_status("Running", f"SQL into {output}")
    ctx.logger.info("query: %s", sql)
    result = _engine(ctx, database).create_table_as(
        sql, output, mode=mode, created_by=f"etl:{ctx.job_name}"
    )
    rows = int(result.table.column("rows_written")[0].as_py())
    ctx.log_metric("etl:rows_written", rows)
    ctx.logger.info(
        "wrote %d rows to %s in %.2fs; read %s", rows, output, result.seconds, result.scanned
    )
    return {
        "output": output,
        "rows_written": rows,
        "scanned": result.scanned,
        "seconds": round(result.seconds, 3),
    }


def _to_batch(value: Any, where: str) -> pa.RecordBatch:
    if isinstance(value, pa.RecordBatch):
        return value
    if isinstance(value, pa.Table):
        return (
            value.combine_chunks().to_batches()[0]
            if value.num_rows
            else pa.RecordBatch.from_pylist([], schema=value.schema)
        )
    try:
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return pa.RecordBatch.from_pandas(value, preserve_index=False)
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pass
    raise InvalidInput(
        f"The transform returned {type(value).__name__} for {where}; return a pandas DataFrame "
        "or a pyarrow Table/RecordBatch."
    )


def run_python(
    ctx: JobContext,
    *,
    entry_point: str,
    input_sql: str,
    output: str,
    mode: str = "overwrite",
    database: str | None = None,
    batch_size: int = 100_000,
) -> dict[str, Any]:
    """Apply ``entry_point`` to each batch of ``input_sql``'s rows (as a pandas DataFrame)
    and write what it returns to the table ``output``. Memory stays bounded by the batch size.
    """
    if mode not in _MODES:
        raise InvalidInput(f"The ETL mode {mode!r} is not one of {', '.join(_MODES)}.")
    fn = load_target(entry_point)
    if not callable(fn):
        raise InvalidInput(f"The transform {entry_point!r} is not a function.")
    engine = _engine(ctx, database)
    counts = {"rows_read": 0, "rows_written": 0, "batches": 0}
    ctx.set_secondary_status("Running", f"{entry_point} into {output}")
    with engine.reader(input_sql, batch_size=batch_size) as source:

        def transformed() -> Iterator[pa.RecordBatch]:
            for batch in source:
                ctx.check_stop()
                counts["rows_read"] += batch.num_rows
                counts["batches"] += 1
                out = _to_batch(fn(batch.to_pandas()), f"batch {counts['batches']}")
                counts["rows_written"] += out.num_rows
                ctx.log_metric("etl:rows_read", counts["rows_read"], step=counts["batches"])
                yield out

        batches = transformed()
        first = next(batches, None)
        if first is None:
            raise InvalidInput(f"The input query returned no rows: {input_sql!r}.")

        def chain() -> Iterator[pa.RecordBatch]:
            yield first
            for batch in batches:
                if batch.schema != first.schema:
                    batch = (
                        batch.cast(first.schema)
                        if batch.schema.names == first.schema.names
                        else None
                    )
                    if batch is None:
                        raise InvalidInput(
                            f"The transform's batch {counts['batches']} has other columns than its first "
                            f"({first.schema.names}); return the same columns for every batch."
                        )
                yield batch

        reader = pa.RecordBatchReader.from_batches(first.schema, chain())
        result = engine.write_reader(reader, output, mode=mode, created_by=f"etl:{ctx.job_name}")
    ctx.log_metric("etl:rows_written", counts["rows_written"])
    ctx.logger.info(
        "%s: read %d rows, wrote %d to %s",
        entry_point,
        counts["rows_read"],
        counts["rows_written"],
        output,
    )
    return {"output": output, **counts, "seconds": round(result.seconds, 3)}
